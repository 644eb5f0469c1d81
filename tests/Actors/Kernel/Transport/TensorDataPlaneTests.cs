using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Tests.Cluster;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Transport;

using Transport = DistributedInference.Actors.Kernel.Transport.Transport;

/// <summary>The tensor data plane between two cluster nodes in this process.</summary>
[Collection(TimedTests.Collection)]
public sealed class TensorDataPlaneTests : TestKit, IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private InProcessCluster? _cluster;

    public TensorDataPlaneTests() => LibTorch.Initialize();

    private ActorSystem From => _cluster!.Nodes[0];

    private ActorSystem To => _cluster!.Nodes[1];

    public async Task InitializeAsync() => _cluster = await InProcessCluster.StartAsync(2, model: null);

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    // An inbox on the receiving node, and the sending node's reference to it.
    private async Task<(Inbox Inbox, IActorRef Remote)> InboxOnReceiver()
    {
        var inbox = Inbox.Create(To);
        var address = Akka.Cluster.Cluster.Get(To).SelfAddress;
        var remote = await From.ActorSelection(inbox.Receiver.Path.ToStringWithAddress(address)).ResolveOne(Timeout);
        return (inbox, remote);
    }

    [Fact]
    public async Task A_micro_batch_arrives_whole_with_its_sender_and_the_payload_sent_is_released_once_written()
    {
        var (inbox, target) = await InboxOnReceiver();
        var plane = TensorDataPlane.For(From)!;
        var sender = Inbox.Create(From);
        var hidden = randn(2, 3, 8);
        var ids = arange(6, ScalarType.Int64).view(2, 3);
        var expected = hidden.clone();

        plane.Send(target, new MicroBatch("job", 5, new StagedBatch(hidden, ids, null)), sender.Receiver);

        var received = Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(Timeout));
        var batch = Assert.IsType<StagedBatch>(received.Payload.Value);
        Assert.Equal(("job", 5), (received.JobId, received.Index));
        Assert.Equal(0, Fixtures.MaxAbsDiff(batch.Hidden, expected));
        Assert.Equal(0, Fixtures.MaxAbsDiff(batch.InputIds, arange(6, ScalarType.Int64).view(2, 3)));
        Assert.Equal(1, TensorDataPlane.For(To)!.FramesReceived);

        // The sender finishes its bookkeeping (count, release) just after the frame is out: it may trail the delivery.
        await AwaitAssertAsync(
            () =>
            {
                Assert.Equal(1, plane.FramesSent);
                Assert.True(hidden.IsInvalid, "the payload the stage handed over was not released");
            },
            Timeout,
            TimeSpan.FromMilliseconds(10));

        // The whole payload was the stage's to hand over (RowBatch's rule): its ids go with its activation.
        Assert.True(ids.IsInvalid, "the ids the payload carried were not released");
        received.Payload.Dispose();
    }

    [Fact]
    public async Task Batch_results_larger_than_akkas_frame_limit_cross_on_the_data_plane()
    {
        var (inbox, target) = await InboxOnReceiver();
        var results = arange(20_000_000, ScalarType.Float32).view(20, -1);
        using var expected = results.clone();

        // 80 MB: Akka.Remote (64 MiB frames here) would drop it.
        Transport.Send(From, target, new Actors.Replica.BatchCompleted("job", 0, results, TimeSpan.Zero));

        var received = Assert.IsType<Actors.Replica.BatchCompleted>(await inbox.ReceiveAsync(Timeout));
        Assert.Equal(0, Fixtures.MaxAbsDiff((Tensor)received.Results!, expected));
    }

    [Fact]
    public async Task Messages_to_a_node_whose_data_plane_cannot_be_reached_go_through_akka_instead()
    {
        var (inbox, target) = await InboxOnReceiver();
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        TensorDataPlane.For(From)!.RememberEndpoint(target.Path.Address, $"127.0.0.1:{port}");

        TensorDataPlane.For(From)!.Send(target, new MicroBatch("job", 1, ones(4)));

        var received = Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(Timeout));
        Assert.Equal(0, Fixtures.MaxAbsDiff((Tensor)received.Payload, ones(4)));
        Assert.Equal(0, TensorDataPlane.For(To)!.FramesReceived);
    }

    [Fact]
    public async Task A_data_plane_that_is_gone_costs_a_few_connection_attempts_not_one_a_message()
    {
        var (inbox, target) = await InboxOnReceiver();
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var plane = TensorDataPlane.For(From)!;
        plane.RememberEndpoint(target.Path.Address, $"127.0.0.1:{port}");
        var before = plane.FailedConnections;

        // Every message still arrives (through Akka), in order; the endpoint is tried again only after a backoff.
        const int Messages = 200;
        for (var i = 0; i < Messages; i++)
        {
            plane.Send(target, new MicroBatch("job", i, ones(2)));
            if (i == 0)
            {
                Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(Timeout));
            }
        }

        for (var i = 1; i < Messages; i++)
        {
            Assert.Equal(i, Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(Timeout)).Index);
        }

        Assert.InRange(plane.FailedConnections - before, 1, TensorDataPlane.MaximumConnectAttempts);
    }

    [Fact]
    public async Task Rows_sent_to_another_node_over_akka_are_written_at_once_and_released_there_gathered_outputs_included()
    {
        var (inbox, target) = await InboxOnReceiver();
        Tensor first = ones(2, 2), second = zeros(1, 2);

        Transport.SendByAkka(From, target, new GatheredOutputs([new OutputGathered("a", first), new OutputGathered("b", second)]));

        Assert.True(first.IsInvalid && second.IsInvalid, "the rows sent were not released once written");
        var back = Assert.IsType<GatheredOutputs>(await inbox.ReceiveAsync(Timeout));
        Assert.Equal(["a", "b"], back.Outputs.Select(o => o.JobId));
        Assert.Equal(0, Fixtures.MaxAbsDiff((Tensor)back.Outputs[1].Output, zeros(1, 2)));
        Assert.Equal(0, TensorDataPlane.For(To)!.FramesReceived);
        back.Outputs.ToList().ForEach(o => o.Output.Dispose());
    }

    [Theory]
    [InlineData(new byte[] { 16, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 })]
    [InlineData(new byte[] { 0, 0, 0, 0, 0, 1, 0, 0 })]
    [InlineData(new byte[] { 255, 255, 255, 255, 255, 255, 255, 255 })]
    public async Task Malformed_or_oversized_frames_drop_that_connection_and_the_node_keeps_serving(byte[] garbage)
    {
        var endpoint = TensorDataPlane.For(To)!.Endpoint;
        using (var rogue = new TcpClient())
        {
            await rogue.ConnectAsync(IPAddress.Loopback, int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            await rogue.GetStream().WriteAsync(garbage);

            // Closed by the receiver: an orderly close, or a reset when it closes with our bytes unread.
            try
            {
                Assert.Equal(0, await rogue.GetStream().ReadAsync(new byte[1]).AsTask().WaitAsync(Timeout));
            }
            catch (IOException)
            {
            }
        }

        var (inbox, target) = await InboxOnReceiver();
        TensorDataPlane.For(From)!.Send(target, new MicroBatch("job", 2, ones(3)));
        Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(Timeout));
        Assert.Equal(1, TensorDataPlane.For(To)!.FramesReceived);
    }

    [Fact]
    public void A_system_without_remoting_has_no_data_plane()
    {
        using var local = ActorSystem.Create("local", Actors.Kernel.Settings.DistributedInferenceConfig.Default());
        Assert.Null(TensorDataPlane.For(local));
    }
}
