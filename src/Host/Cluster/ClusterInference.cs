using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster;
using DistributedInference.Actors.Cluster;
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
    private static readonly TimeSpan RegisterTimeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Joins the cluster of <paramref name="seeds"/> as a client, listening on the address that routes toward the first
    /// seed, with <paramref name="secret"/> (null: the options' <c>--secret-file</c> or <c>DI_CLUSTER_SECRET</c>).
    /// </summary>
    public static async Task<ActorSystem> JoinAsClientAsync(IReadOnlyList<string> seeds, string? configFile, InferOptions options, string? secret = null)
    {
        var client = ClusterNode.Start(new NodeOptions(
            LocalAddressToward(seeds[0]), 0, seeds, [ClusterNode.ClientRole], "cpu", configFile, options.Model, options.Task, options.DType, options.MaxNewTokens, options.Seed, options.LibTorch,
            Secret: secret ?? ClusterSecret.Read(options.SecretFile), TlsCertificate: options.TlsCertificate));
        await ClusterJoin.WhenUpAsync(client, seeds, options.JoinTimeout);
        return client;
    }

    /// <summary>Leaves the cluster gracefully.</summary>
    public static Task LeaveAsync(ActorSystem client) => CoordinatedShutdown.Get(client).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);

    /// <param name="nodes">Device nodes to wait for; null: those that are Up now (client mode).</param>
    public static Task Run(ActorSystem client, PreparedJob job, InferOptions options, int? nodes, TextWriter stdout, TextWriter stderr, CancellationToken cancellation) =>
        options.Mode == "pipeline"
            ? RunPipeline(client, job, options, nodes, stdout, stderr, cancellation)
            : RunReplica(client, job, options, nodes, stdout, stderr, cancellation);

    private static async Task RunPipeline(ActorSystem client, PreparedJob job, InferOptions options, int? nodes, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var log = TextWriter.Synchronized(stderr);
        await using var pipeline = await ClusterPipeline.StartAsync(
            client, ClusterNode.ServedModelName(job.Source, job.Task), options.SplitPoints, options.DType, nodes,
            message => log.Write($"di: {message}{(message.EndsWith('\n') ? string.Empty : Environment.NewLine)}"), cancellation);
        await PipelineInference.RunCalls(pipeline, job, options, stdout, stderr, cancellation);
    }

    // With control nodes the job goes to its coordinator through the job shard region (and survives the loss of the
    // coordinator's node: the client keeps the rows it received and submits the others again); without, a splitter here runs it.
    private static async Task RunReplica(ActorSystem client, PreparedJob job, InferOptions options, int? nodes, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var control = Akka.Cluster.Cluster.Get(client).State.Members.Where(m => m.Status == MemberStatus.Up && m.HasRole(JobSharding.ControlRole)).Select(m => m.Address).ToList();
        IActorRef jobs;
        IReadOnlyList<ActorSelection> splitters;
        var local = new List<IActorRef>();
        if (control.Count > 0)
        {
            jobs = JobSharding.StartProxy(client);
            splitters = control.Select(address => client.ActorSelection(new RootActorPath(address) / "user" / ReplicaSplitter.ActorName)).ToList();
        }
        else
        {
            jobs = client.ActorOf(ReplicaSplitter.Props([]), ReplicaSplitter.ActorName);
            local.AddRange([jobs, client.ActorOf(DeviceRegistry.Props(jobs), JobSharding.RegistryName)]);
            splitters = [client.ActorSelection(jobs.Path)];
        }

        try
        {
            var model = ModelIdentity.Of(job.Source.Name, job.Source.RandomSeed);
            var devices = await ServingDevices(await WaitForDevices(client, splitters, nodes, cancellation), job, model, cancellation);

            // None serving the model: the job says so itself (one line), so nothing is said before it.
            if (devices.Count > 0)
            {
                await stderr.WriteLineAsync($"di: {devices.Select(d => d.Path.Address).Distinct().Count()} node(s), {devices.Count} device(s){(control.Count > 0 ? $", job coordinators on {control.Count} control node(s)" : string.Empty)}");
            }

            var rows = job.Rows();
            var result = await ProgressBar.Track(
                stderr,
                $"{job.Task.Name()} on {devices.Count} device(s)",
                progress => new ReplicaClient(client, jobs) { ResubmitOnLoss = control.Count > 0, OnResubmit = line => stderr.WriteLine($"di: {line}") }.RunAsync(rows, new JobOptions(options.ApplyPadding, options.MaxBatchSize) { Model = model }, progress, cancellation));
            job.Complete(options, (Tensor)result.Results!, "replica (cluster)", devices.Count, null, stdout, stderr, result.FailedRows);
        }
        finally
        {
            local.ForEach(actor => actor.Tell(PoisonPill.Instance));
        }
    }

    // The devices serving the job's model (the job itself runs only on those, and fails naming what the devices serve
    // when there are none: ModelIdentity.Serves is the one rule). They were loaded for a task when their node started;
    // a job for another would get wrong results.
    private static async Task<IReadOnlyList<IActorRef>> ServingDevices(IReadOnlyList<IActorRef> devices, PreparedJob job, string model, CancellationToken cancellation)
    {
        var task = job.Task;
        var statuses = await Task.WhenAll(devices.Select(d => d.Ask<DeviceStatus>(GetDeviceStatus.Instance, TimeSpan.FromSeconds(30), cancellation)));
        var serving = devices.Zip(statuses).Where(pair => ModelIdentity.Serves(pair.Second.Model, model)).ToList();
        var other = serving.Select(pair => pair.Second).FirstOrDefault(s => !s.Model.Contains($"({task.Name()}, ", StringComparison.Ordinal));
        if (other is not null)
        {
            throw new InvalidInputException($"the cluster's devices serve {other.Model}, not task {task.Name()}: start the nodes with --task {task.Name()}");
        }

        // Devices compute in the dtype and generate with the options they were loaded with: a job asking for others would
        // silently get the nodes' settings.
        var settings = $"({ModelIdentity.Settings(task, Models.Runtime.Precision.Name(job.DType), job.Generation)})";
        var unlike = serving.Select(pair => pair.Second).FirstOrDefault(s => !s.Model.Contains(settings, StringComparison.Ordinal));
        if (unlike is not null)
        {
            throw new InvalidInputException(
                $"the cluster's devices serve {unlike.Model}, but the job asks for {settings}: give the job the nodes' --dtype and generation options, or start the nodes with the job's");
        }

        return serving.Select(pair => pair.First).ToList();
    }

    // Every device of every Up device node (at least `nodes` of them) known to every splitter that may run the job.
    private static async Task<IReadOnlyList<IActorRef>> WaitForDevices(ActorSystem client, IReadOnlyList<ActorSelection> splitters, int? nodes, CancellationToken cancellation)
    {
        var cluster = Akka.Cluster.Cluster.Get(client);
        var deadline = DateTime.UtcNow + RegisterTimeout;
        while (true)
        {
            var up = cluster.State.Members.Where(m => m.Status == MemberStatus.Up && m.HasRole(DeviceManager.Role)).Select(m => m.Address).ToHashSet();
            var known = await Task.WhenAll(splitters.Select(async splitter =>
            {
                try
                {
                    return (await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5), cancellation)).Devices;
                }
                catch (AskTimeoutException)
                {
                    return (IReadOnlyList<IActorRef>)[];
                }
            }));
            var registered = known.Select(devices => devices.Select(d => d.Path.Address).ToHashSet()).Aggregate((a, b) => a.Intersect(b).ToHashSet());
            if (up.Count >= Math.Max(1, nodes ?? 1) && up.IsSubsetOf(registered))
            {
                return known[0];
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new JobFailedException($"{registered.Count} of {Math.Max(up.Count, nodes ?? 1)} device node(s) registered their devices within {RegisterTimeout.TotalSeconds:F0} s (replica mode needs nodes started with --serve replica)");
            }

            await Task.Delay(200, cancellation);
        }
    }

    // The local address of the interface that routes to the seed: the address other nodes can reach this client at.
    private static string LocalAddressToward(string seed)
    {
        var host = SeedNode.Parse(seed, "--join").Host;
        var address = IPAddress.TryParse(host, out var parsed) ? parsed : Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
            ?? throw new InvalidInputException($"--join {seed}: cannot resolve {host}");
        if (IPAddress.IsLoopback(address))
        {
            return address.ToString();
        }

        using var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Connect(address, 9);
        return ((IPEndPoint)socket.LocalEndPoint!).Address.ToString();
    }
}
