using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// <c>di bench transport</c>: micro-batches of tensors between two cluster nodes on 127.0.0.1 (two actor systems in this
/// process, so every message is serialized and crosses a TCP connection), through Akka.Remote and through our tensor
/// data plane (authenticated with a cluster secret; then again with mutual TLS on both Akka and the data plane), next
/// to a raw TCP socket on loopback carrying the same bytes. All three keep the same number of messages
/// in flight (a credit window, each message acknowledged), as pipeline stages do. Prints medians of several rounds in
/// MB/s (10^6 bytes) and the ratios to raw TCP.
/// </summary>
public static class TransportBenchmark
{
    public static async Task Run(IReadOnlyList<int> sizesMb, int messages, int window, int rounds, TextWriter output)
    {
        LibTorch.Initialize();
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"transport: {messages} messages per round, {window} in flight, median of {rounds} rounds (after one warm-up), 127.0.0.1"));
        var certificate = Path.Combine(Path.GetTempPath(), $"di-bench-{Guid.NewGuid():N}.pfx");
        await File.WriteAllBytesAsync(certificate, Actors.Kernel.Membership.ClusterSecurity.NewSelfSignedCertificate(string.Empty, TimeSpan.FromDays(1)));
        try
        {
            var secret = $"distributed-inference.security.secret = \"{Actors.Kernel.Membership.ClusterSecurity.NewSecret()}\"";
            await using var nodes = await TwoNodes.StartAsync(secret);
            await using var tlsNodes = await TwoNodes.StartAsync($"{secret}\ndistributed-inference.security.tls.certificate = {System.Text.Json.JsonSerializer.Serialize(certificate)}");
            foreach (var size in sizesMb)
            {
                using var tensor = rand(size * 1_000_000L / sizeof(float), dtype: ScalarType.Float32);
                var bytes = tensor.NumberOfElements * sizeof(float);
                var akka = await Measure.Median(rounds, () => nodes.Send(tensor, messages, window, dataPlane: false));
                var plane = await Measure.Median(rounds, () => nodes.Send(tensor, messages, window, dataPlane: true));
                var tls = await Measure.Median(rounds, () => tlsNodes.Send(tensor, messages, window, dataPlane: true));
                var tcp = await Measure.Median(rounds, () => RawTcp(bytes, messages, window));
                double Rate(TimeSpan time) => messages * bytes / time.TotalSeconds / 1e6;
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"{size,3} MB tensors: akka remote {Rate(akka),6:F0} MB/s ({Rate(akka) / Rate(tcp):F2})   data plane (secret) {Rate(plane),6:F0} MB/s ({Rate(plane) / Rate(tcp):F2})   data plane (secret + TLS) {Rate(tls),6:F0} MB/s ({Rate(tls) / Rate(tcp):F2})   raw tcp {Rate(tcp),6:F0} MB/s"));
            }
        }
        finally
        {
            File.Delete(certificate);
        }
    }

    // Length-prefixed messages of `bytes` bytes, each acknowledged with one byte, at most `window` unacknowledged.
    private static async Task RawTcp(long bytes, int messages, int window)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var receiver = Task.Run(async () =>
        {
            using var connection = await listener.AcceptTcpClientAsync();
            var stream = connection.GetStream();
            var buffer = new byte[bytes];
            var header = new byte[8];
            for (var m = 0; m < messages; m++)
            {
                await stream.ReadExactlyAsync(header);
                await stream.ReadExactlyAsync(buffer.AsMemory(0, (int)BinaryPrimitives.ReadInt64LittleEndian(header)));
                await stream.WriteAsync(new byte[] { 1 });
            }
        });

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var sender = client.GetStream();
        var payload = new byte[8 + bytes];
        BinaryPrimitives.WriteInt64LittleEndian(payload, bytes);
        var ack = new byte[1];
        var inFlight = 0;
        for (var m = 0; m < messages; m++)
        {
            if (inFlight == window)
            {
                await sender.ReadExactlyAsync(ack);
                inFlight--;
            }

            await sender.WriteAsync(payload);
            inFlight++;
        }

        for (; inFlight > 0; inFlight--)
        {
            await sender.ReadExactlyAsync(ack);
        }

        await receiver;
    }

    private sealed class TwoNodes : IAsyncDisposable
    {
        private readonly ActorSystem _from;
        private readonly ActorSystem _to;
        private readonly IActorRef _sink;

        private TwoNodes(ActorSystem from, ActorSystem to, IActorRef sink)
        {
            _from = from;
            _to = to;
            _sink = sink;
        }

        // Two nodes with these settings (a secret, a certificate) over the cluster defaults.
        public static async Task<TwoNodes> StartAsync(string security)
        {
            ActorSystem Node() => Actors.Kernel.Membership.ClusterSecurity.CreateSystem(
                "distributed-inference", Akka.Configuration.ConfigurationFactory.ParseString(security).WithFallback(DistributedInferenceConfig.Cluster("127.0.0.1", 0, ["client"])));
            var from = Node();
            var to = Node();
            var seed = Akka.Cluster.Cluster.Get(from).SelfAddress;
            await Task.WhenAll(new[] { from, to }.Select(system =>
            {
                Akka.Cluster.Cluster.Get(system).Join(seed);
                return Cluster.ClusterNode.WhenUp(system, TimeSpan.FromSeconds(30));
            }));
            to.ActorOf(Props.Create(() => new Sink()), "sink");
            var sink = await from.ActorSelection(new RootActorPath(Akka.Cluster.Cluster.Get(to).SelfAddress) / "user" / "sink").ResolveOne(TimeSpan.FromSeconds(10));
            return new TwoNodes(from, to, sink);
        }

        public async Task Send(Tensor tensor, int messages, int window, bool dataPlane)
        {
            var done = new TaskCompletionSource();
            var plane = TensorDataPlane.For(_from)!;
            Action<IActorRef, MicroBatch> send = dataPlane
                ? (self, batch) => plane.Send(_sink, batch, self)
                : (self, batch) => Transport.SendByAkka(_from, _sink, batch, self);
            _from.ActorOf(Props.Create(() => new Source(send, tensor, messages, window, done)));
            await done.Task;
        }

        public async ValueTask DisposeAsync() => await Task.WhenAll(_from.Terminate(), _to.Terminate());
    }

    // Receives micro-batches (deserialized into tensors here) and acknowledges each.
    private sealed class Sink : ReceiveActor
    {
        public Sink() => Receive<MicroBatch>(batch =>
        {
            batch.Payload.Dispose();
            Sender.Tell(new Status.Success(batch.Index));
        });
    }

    // Sends `messages` micro-batches carrying the tensor, at most `window` unacknowledged. Each carries a handle of its
    // own: either transport releases what it sent once written.
    private sealed class Source : ReceiveActor
    {
        private int _sent;
        private int _acknowledged;

        public Source(Action<IActorRef, MicroBatch> send, Tensor tensor, int messages, int window, TaskCompletionSource done)
        {
            void Fill()
            {
                while (_sent < messages && _sent - _acknowledged < window)
                {
                    send(Self, new MicroBatch("bench", _sent++, tensor.alias()));
                }
            }

            Receive<Status.Success>(_ =>
            {
                if (++_acknowledged == messages)
                {
                    done.TrySetResult();
                    Context.Stop(Self);
                    return;
                }

                Fill();
            });
            Fill();
        }
    }
}
