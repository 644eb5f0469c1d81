using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Host.Inference;
using DistributedInference.Models;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// A <c>di infer</c> job run by a client node (no devices of its own) on the devices of a cluster: replica mode splits
/// the rows over every device of every node; pipeline mode cuts the model over them, one stage per device, the
/// stages built by each node's stage host. Used by <c>di launch</c> and by <c>di infer --join host:port</c>.
/// </summary>
public static class ClusterInference
{
    /// <summary>
    /// Joins the cluster of <paramref name="seeds"/> as a client, listening on the address that routes toward the first
    /// seed, with <paramref name="secret"/> (null: the options' <c>--secret-file</c> or <c>DI_CLUSTER_SECRET</c>).
    /// <paramref name="cancellation"/> ends the wait for the join (<see cref="OperationCanceledException"/>).
    /// </summary>
    public static async Task<ActorSystem> JoinAsClientAsync(IReadOnlyList<string> seeds, string? configFile, InferOptions options, string? secret = null, CancellationToken cancellation = default)
    {
        var client = ClusterNode.Start(new NodeOptions(
            LocalAddressToward(seeds[0]), 0, seeds, [ClusterNode.ClientRole], "cpu", configFile, options.Model, options.Task, options.DType, options.MaxNewTokens, options.Seed, options.LibTorch,
            Secret: secret ?? ClusterSecret.Read(options.SecretFile), TlsCertificate: options.TlsCertificate));
        await ClusterJoin.WhenUpAsync(client, seeds, options.JoinTimeout, cancellation);
        return client;
    }

    /// <summary>Leaves the cluster gracefully.</summary>
    public static Task LeaveAsync(ActorSystem client) => CoordinatedShutdown.Get(client).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);

    /// <param name="nodes">Device nodes to wait for; null: those that are Up now (client mode).</param>
    public static Task Run(ActorSystem client, PreparedJob job, InferOptions options, int? nodes, TextWriter stdout, TextWriter stderr, CancellationToken cancellation) =>
        options.Mode == Mode.Pipeline
            ? RunPipeline(client, job, options, nodes, stdout, stderr, cancellation)
            : RunReplica(client, job, options, nodes, stdout, stderr, cancellation);

    private static async Task RunPipeline(ActorSystem client, PreparedJob job, InferOptions options, int? nodes, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        // The first message is the plan (informational, left out by --quiet); later ones say why the plan changed.
        var log = TextWriter.Synchronized(stderr);
        var planned = 0;
        await using var pipeline = await ClusterPipeline.StartAsync(
            client, ModelIdentity.Of(job.Source.Name, job.Source.RandomSeed), job.Task, options.SplitPoints, job.Precision, nodes,
            message => (Interlocked.Exchange(ref planned, 1) == 0 ? options.Informational(log) : log).Write($"di: {message}{(message.EndsWith('\n') ? string.Empty : Environment.NewLine)}"), cancellation);
        await PipelineInference.RunCalls(pipeline, job, options, stdout, stderr, cancellation);
    }

    // The route (coordinators on control nodes, or a splitter here; the devices serving the model) is the Actors'
    // policy (ClusterReplicaRoute); this prints it and runs the job with a progress bar, saying when the job is accepted.
    private static async Task RunReplica(ActorSystem client, PreparedJob job, InferOptions options, int? nodes, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var spec = new ReplicaSpec(ModelIdentity.Of(job.Source.Name, job.Source.RandomSeed), job.Task, job.Precision, job.Generation);
        await using var route = await ClusterReplicaRoute.OpenAsync(client, spec, nodes, cancellation);

        // None serving the model: the job says so itself (one line), so nothing is said before it.
        if (route.Devices.Count > 0)
        {
            await options.Informational(stderr).WriteLineAsync($"di: {route.Describe()}");
        }

        var rows = job.Rows();
        void Say(string line) => stderr.WriteLine($"di: {line}");
        var result = await ProgressBar.Track(
            stderr,
            $"{job.Task.Name()} on {route.Devices.Count} device(s)",
            progress => route.CreateClient(Say, line => options.Informational(stderr).WriteLine($"di: {line}")).RunAsync(rows, new JobOptions(options.ApplyPadding, options.MaxBatchSize) { Model = spec.Model }, progress, cancellation));
        job.Complete(options, (Tensor)result.Results!, "replica (cluster)", route.Devices.Count, null, stdout, stderr, result.FailedRows);
    }

    // The local address of the interface that routes to the seed: the address other nodes can reach this client at.
    internal static string LocalAddressToward(string seed)
    {
        var address = Resolve(seed);
        if (IPAddress.IsLoopback(address))
        {
            return address.ToString();
        }

        using var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Connect(address, 9);
        return ((IPEndPoint)socket.LocalEndPoint!).Address.ToString();
    }

    /// <summary>The address of <paramref name="seed"/>'s host (host:port): itself when it is an IP address, else its first IPv4 address.</summary>
    /// <exception cref="InvalidInputException">Not host:port, or a host that does not resolve.</exception>
    internal static IPAddress Resolve(string seed)
    {
        var host = SeedNode.Parse(seed, "--join").Host;
        if (IPAddress.TryParse(host, out var parsed))
        {
            return parsed;
        }

        try
        {
            return Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                ?? throw new InvalidInputException($"--join {seed}: {host} has no IPv4 address");
        }
        catch (SocketException e)
        {
            throw new InvalidInputException($"--join {seed}: cannot resolve {host}: {e.Message}", e);
        }
    }
}
