using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Transport;

using Transport = DistributedInference.Actors.Kernel.Transport.Transport;

/// <summary>
/// Who may use a node's data plane (127.0.0.1, two cluster nodes with a secret in this process): only a peer that
/// proves the secret and is a cluster member; only results streams, to local actors, from senders on that peer; and a
/// flood of idle connections is capped and timed out while real traffic keeps flowing.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class DataPlaneSecurityTests : TestKit, IAsyncLifetime
{
    private const string Secret = "test-cluster-secret-of-32-characters-or-more";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1.5);
    private ActorSystem? _from;
    private ActorSystem? _to;

    public DataPlaneSecurityTests() => LibTorch.Initialize();

    private ActorSystem From => _from!;

    private ActorSystem To => _to!;

    private TensorDataPlane Receiver => TensorDataPlane.For(To)!;

    private static byte[] Key => System.Text.Encoding.UTF8.GetBytes(Secret);

    /// <summary>Two nodes with this secret (and extra HOCON) joined in one cluster.</summary>
    internal static async Task<(ActorSystem, ActorSystem)> TwoNodes(string secret, string extra = "")
    {
        Config Node() => ConfigurationFactory.ParseString($"distributed-inference.security.secret = \"{secret}\"\n{extra}")
            .WithFallback(DistributedInferenceConfig.Cluster("127.0.0.1", 0, [DeviceManager.Role]));
        var from = ClusterSecurity.CreateSystem("distributed-inference", Node());
        var to = ClusterSecurity.CreateSystem("distributed-inference", Node());
        TensorDataPlane.For(from);
        TensorDataPlane.For(to);
        var seed = Akka.Cluster.Cluster.Get(from).SelfAddress;
        await Task.WhenAll(new[] { from, to }.Select(system =>
        {
            var up = new TaskCompletionSource();
            Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => up.TrySetResult());
            Akka.Cluster.Cluster.Get(system).Join(seed);
            return up.Task;
        })).WaitAsync(TimeSpan.FromSeconds(30));
        return (from, to);
    }

    public async Task InitializeAsync() => (_from, _to) = await TwoNodes(Secret, "distributed-inference.data-plane.handshake-timeout = 1s");

    public async Task DisposeAsync() => await Task.WhenAll(From.Terminate(), To.Terminate());

    private async Task<(Inbox Inbox, IActorRef Remote)> InboxOnReceiver()
    {
        var inbox = Inbox.Create(To);
        var remote = await From.ActorSelection(inbox.Receiver.Path.ToStringWithAddress(Akka.Cluster.Cluster.Get(To).SelfAddress)).ResolveOne(Timeout);
        return (inbox, remote);
    }

    private DistributedInferenceSerializer Serializer => TensorDataPlane.For(To)!.Serializer;

    private string FromAddress => Akka.Cluster.Cluster.Get(From).SelfAddress.ToString();

    private async Task<NetworkStream> Connect()
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, Receiver.LocalEndpoint.Port);
        return client.GetStream();
    }

    // A connection that passed the handshake with this secret, claiming to be the node at `address`.
    private async Task<NetworkStream> Authenticated(string address)
    {
        var stream = await Connect();
        await DataPlaneHandshake.ConnectAsync(stream, Key, address, "127.0.0.1:1", CancellationToken.None);
        return stream;
    }

    /// <summary>One data-plane frame, by hand: length, target, sender, manifest, body.</summary>
    internal static byte[] Frame(DistributedInferenceSerializer serializer, string target, string sender, object message)
    {
        using var body = new MemoryStream();
        using (var writer = new BinaryWriter(body, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            ValueCodec.WriteString(writer, target);
            ValueCodec.WriteString(writer, sender);
            ValueCodec.WriteString(writer, serializer.Manifest(message));
            serializer.Write(writer, message);
        }

        return [.. BitConverter.GetBytes(body.Length), .. body.ToArray()];
    }

    // Whether the node closed the connection (an orderly close or a reset) within the timeout.
    private static async Task<bool> Dropped(Stream stream)
    {
        try
        {
            var buffer = new byte[256];
            while (await stream.ReadAsync(buffer).AsTask().WaitAsync(Timeout) > 0)
            {
            }

            return true;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static async Task NothingArrives(Inbox inbox)
    {
        await Assert.ThrowsAnyAsync<Exception>(() => inbox.ReceiveAsync(Quiet));
    }

    [Fact]
    public async Task A_client_that_does_not_authenticate_gets_nothing_parsed_and_is_dropped()
    {
        var (inbox, _) = await InboxOnReceiver();
        var target = inbox.Receiver.Path.ToSerializationFormat();
        var frame = Frame(Serializer, target, string.Empty, new MicroBatch("job", 0, ones(2)));

        // A well-formed frame with no handshake before it.
        await using (var raw = await Connect())
        {
            await raw.WriteAsync(frame);
            Assert.True(await Dropped(raw));
        }

        // A handshake with another secret: the node refuses the proof and drops the connection before any frame.
        await using (var wrong = await Connect())
        {
            await Assert.ThrowsAsync<AuthenticationException>(() => DataPlaneHandshake.ConnectAsync(wrong, "another-cluster-secret-of-32-characters-or-more"u8.ToArray(), FromAddress, "127.0.0.1:1", CancellationToken.None));
            Assert.True(await Dropped(wrong));
        }

        // The right secret from an address that is not a member of the cluster.
        await using (var stranger = await Authenticated("akka.tcp://distributed-inference@127.0.0.1:9"))
        {
            await stranger.WriteAsync(frame);
            Assert.True(await Dropped(stranger));
        }

        await NothingArrives(inbox);
        Assert.Equal(0, Receiver.FramesReceived);
        Assert.True(Receiver.ConnectionsRefused >= 3);

        // A member that proves the secret is served.
        var (served, _) = await InboxOnReceiver();
        await using var member = await Authenticated(FromAddress);
        await member.WriteAsync(Frame(Serializer, served.Receiver.Path.ToSerializationFormat(), string.Empty, new MicroBatch("job", 1, ones(2))));
        Assert.Equal(1, Assert.IsType<MicroBatch>(await served.ReceiveAsync(Timeout)).Index);
    }

    [Fact]
    public async Task Nodes_with_different_secrets_do_not_use_each_others_data_plane_and_messages_take_akka()
    {
        var (other, _) = await TwoNodes("another-cluster-secret-of-32-characters-or-more");
        try
        {
            var (inbox, target) = await InboxOnReceiver();
            var (theirs, _) = (TensorDataPlane.For(other)!, 0);
            theirs.Send(target, new MicroBatch("job", 3, ones(2)));
            Assert.Equal(3, Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(Timeout)).Index);
            Assert.Equal(0, Receiver.FramesReceived);
            Assert.Equal(0, theirs.FramesSent);
        }
        finally
        {
            await other.Terminate();
        }
    }

    [Fact]
    public async Task A_frame_whose_sender_or_target_is_on_another_node_than_the_peer_is_dropped()
    {
        var (inbox, _) = await InboxOnReceiver();
        var target = inbox.Receiver.Path.ToSerializationFormat();

        // No message names a network address to answer: an answer goes to the frame's sender, which must be on the
        // authenticated peer, and only a frame for this node's own actors is delivered.
        await using (var peer = await Authenticated(FromAddress))
        {
            await peer.WriteAsync(Frame(Serializer, target, string.Empty, new RunBatch("job", 0, ones(1, 2))));
            var batch = Assert.IsType<RunBatch>(await inbox.ReceiveAsync(Timeout));
            ((Tensor)batch.Rows).Dispose();
        }

        // A result whose sender (where the answer would go) is on another node than the authenticated peer.
        await using (var peer = await Authenticated(FromAddress))
        {
            await peer.WriteAsync(Frame(Serializer, target, "akka.tcp://distributed-inference@10.9.9.9:4053/user/elsewhere#1", new MicroBatch("job", 0, ones(2))));
            Assert.True(await Dropped(peer));
        }

        // A frame for an actor on another node (a relay through this one).
        await using (var peer = await Authenticated(FromAddress))
        {
            await peer.WriteAsync(Frame(Serializer, "akka.tcp://distributed-inference@10.9.9.9:4053/user/sink#1", string.Empty, new MicroBatch("job", 0, ones(2))));
            Assert.True(await Dropped(peer));
        }

        await NothingArrives(inbox);
        Assert.Equal(1, Receiver.FramesReceived);
    }

    [Fact]
    public async Task A_remove_device_control_frame_is_rejected()
    {
        var (inbox, _) = await InboxOnReceiver();
        var target = inbox.Receiver.Path.ToSerializationFormat();
        foreach (var control in new object[] { new RemoveDevice(inbox.Receiver), new AddDevice(inbox.Receiver), new CancelJob("job"), new DropJob("job") })
        {
            await using var peer = await Authenticated(FromAddress);
            await peer.WriteAsync(Frame(Serializer, target, string.Empty, control));
            Assert.True(await Dropped(peer));
        }

        await NothingArrives(inbox);
        Assert.Equal(0, Receiver.FramesReceived);

        // Control messages told through the data plane take Akka instead.
        var (_, remote) = await InboxOnReceiver();
        Transport.Send(From, remote, new CancelJob("job"));
        Assert.Equal(0, TensorDataPlane.For(From)!.FramesSent);
    }

    [Fact]
    public async Task A_frame_claiming_a_billion_list_entries_costs_no_more_memory_than_its_bytes()
    {
        // job id, index, then a list tag claiming 10^9 entries, then a few bytes; the header claims a 900 MB frame.
        using var body = new MemoryStream();
        using (var writer = new BinaryWriter(body, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            ValueCodec.WriteString(writer, string.Empty);
            ValueCodec.WriteString(writer, string.Empty);
            ValueCodec.WriteString(writer, "micro-batch");
            ValueCodec.WriteString(writer, "job");
            writer.Write(0);
            writer.Write((byte)8);
            writer.Write(1_000_000_000);
            writer.Write(new byte[] { 0, 0, 0, 0 });
        }

        byte[] frame = [.. BitConverter.GetBytes(900_000_000L), .. body.ToArray()];
        var reader = new DataPlaneFrameReader(new MemoryStream(frame), 1L << 30, TimeSpan.FromSeconds(30), 1 << 20);
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<BadFrameException>(() => reader.Next(Serializer));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 64 * 1024, $"reading {frame.Length} bytes allocated {allocated} bytes");

        // Over the network from a member: that connection is dropped, the node keeps serving.
        var (inbox, target) = await InboxOnReceiver();
        await using (var peer = await Authenticated(FromAddress))
        {
            await peer.WriteAsync(frame);
            await peer.FlushAsync();
            peer.Socket.Shutdown(SocketShutdown.Send);
            Assert.True(await Dropped(peer));
        }

        TensorDataPlane.For(From)!.Send(target, new MicroBatch("job", 4, ones(3)));
        Assert.Equal(4, Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(Timeout)).Index);
        Assert.Equal(1, Receiver.FramesReceived);
    }

    [Fact]
    public async Task A_thousand_idle_connections_are_capped_and_timed_out_while_micro_batches_keep_flowing()
    {
        var (inbox, target) = await InboxOnReceiver();
        var threads = Process.GetCurrentProcess().Threads.Count;
        var idle = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 1000; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Receiver.LocalEndpoint.Port);
                idle.Add(client);
            }

            // Each connection over the cap pushes the oldest waiting one out: at least 1000 - cap are refused, the rest held.
            await AwaitAssertAsync(
                () =>
                {
                    Assert.True(Receiver.ConnectionsRefused >= 1000 - Receiver.Limits.MaximumPendingHandshakes, $"{Receiver.ConnectionsRefused} connections refused");
                    Assert.True(Receiver.OpenConnections <= Receiver.Limits.MaximumPendingHandshakes, $"{Receiver.OpenConnections} connections held");
                },
                Timeout,
                TimeSpan.FromMilliseconds(50));
            Assert.True(Process.GetCurrentProcess().Threads.Count - threads < 100, "a thread per connection");

            // Real traffic still gets through on the data plane.
            TensorDataPlane.For(From)!.Send(target, new MicroBatch("job", 7, ones(3)));
            Assert.Equal(7, Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(Timeout)).Index);
            Assert.Equal(1, Receiver.FramesReceived);

            // Past the handshake timeout (1 s here) only the authenticated connection is left.
            await AwaitAssertAsync(() => Assert.True(Receiver.OpenConnections <= 1, $"{Receiver.OpenConnections} connections still open"), Timeout, TimeSpan.FromMilliseconds(100));

            Assert.True(Receiver.ConnectionsRefused >= 1000);
        }
        finally
        {
            idle.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task The_listener_binds_the_address_a_host_name_stands_for_and_a_taken_port_is_refused()
    {
        using var node = ClusterSecurity.CreateSystem("distributed-inference", DistributedInferenceConfig.Cluster("localhost", 0, ["client"]));
        var plane = TensorDataPlane.For(node)!;
        Assert.Equal(IPAddress.Loopback, plane.LocalEndpoint.Address);

        // Akka's transport binds with SO_REUSEADDR (SO_REUSEPORT on Linux .NET): a second node would listen beside it.
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        var error = Assert.Throws<Models.InvalidInputException>(() => ListenAddress.RequireFree("127.0.0.1", port, "--port"));
        Assert.Equal($"--port 127.0.0.1:{port} is already in use (another di node there?): choose another port", error.Message);

        // A data plane asked for a taken port says so instead of listening beside it.
        var config = ConfigurationFactory.ParseString($"distributed-inference.data-plane.port = {port}").WithFallback(DistributedInferenceConfig.Cluster("127.0.0.1", 0, ["client"]));
        using var second = ClusterSecurity.CreateSystem("distributed-inference", config);
        var refused = Assert.ThrowsAny<Exception>(() => TensorDataPlane.For(second));
        Assert.Contains("already in use", refused.ToString(), StringComparison.Ordinal);
        await Task.CompletedTask;
    }

    [Fact]
    public void A_node_without_a_secret_refuses_a_non_loopback_address_and_says_how_to_make_one()
    {
        var security = ClusterSecurity.From(DistributedInferenceConfig.Cluster("127.0.0.1", 0, ["client"]));
        security.RequireSecretOffLoopback("127.0.0.1");
        security.RequireSecretOffLoopback("localhost");
        var error = Assert.Throws<Models.InvalidInputException>(() => security.RequireSecretOffLoopback("10.1.2.3"));
        Assert.Contains("di secret > cluster.secret", error.Message, StringComparison.Ordinal);
        Assert.Matches("^[A-Za-z0-9_-]{43}$", ClusterSecurity.NewSecret());
        Assert.NotEqual(ClusterSecurity.NewSecret(), ClusterSecurity.NewSecret());
    }

    [Fact]
    public void A_secret_shorter_than_32_characters_is_an_input_error_at_start()
    {
        var config = ConfigurationFactory.ParseString("distributed-inference.security.secret = \"0123456789abcdef\"").WithFallback(DistributedInferenceConfig.Cluster("127.0.0.1", 0, ["client"]));
        var error = Assert.Throws<Models.InvalidInputException>(() => ClusterSecurity.From(config));
        Assert.StartsWith("the cluster secret has 16 characters, at least 32 are needed: make one with `di secret > cluster.secret`", error.Message, StringComparison.Ordinal);
        Assert.Throws<Models.InvalidInputException>(() => ClusterSecurity.CreateSystem("distributed-inference", config));
    }

    [Fact]
    public async Task The_accepting_node_sends_no_proof_before_the_connecting_side_has_proved_itself()
    {
        await using var stream = await Connect();
        var address = System.Text.Encoding.UTF8.GetBytes(FromAddress);
        var endpoint = "127.0.0.1:1"u8.ToArray();
        byte[] hello =
        [
            .. "DIDP"u8, 2, .. new byte[DataPlaneHandshake.NonceSize],
            .. BitConverter.GetBytes((ushort)address.Length), .. address, .. BitConverter.GetBytes((ushort)endpoint.Length), .. endpoint,
        ];
        await stream.WriteAsync(hello);

        // The answer: magic, version, the node's nonce and its address, and nothing more (no HMAC to guess against).
        var self = System.Text.Encoding.UTF8.GetBytes(Akka.Cluster.Cluster.Get(To).SelfAddress.ToString());
        var answer = new byte[5 + DataPlaneHandshake.NonceSize + 2 + self.Length];
        await stream.ReadExactlyAsync(answer).AsTask().WaitAsync(Timeout);
        Assert.Equal(self, answer[^self.Length..]);
        // (Within the fixture's 1 s handshake timeout.)
        var more = stream.ReadAsync(new byte[64]).AsTask();
        Assert.NotSame(more, await Task.WhenAny(more, Task.Delay(TimeSpan.FromMilliseconds(400))));

        // A wrong proof: the node closes the connection without a byte of its own proof.
        await stream.WriteAsync(new byte[32]);
        try
        {
            Assert.Equal(0, await more.WaitAsync(Timeout));
        }
        catch (IOException)
        {
            // A reset is a drop too.
        }
    }
}
