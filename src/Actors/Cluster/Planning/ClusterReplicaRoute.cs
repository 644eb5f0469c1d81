using Akka.Actor;
using Akka.Cluster;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Cluster.Planning;

/// <summary>
/// The way a replica job takes through a cluster, decided once per job by one policy (used by the <c>di</c> client and
/// open to embedders): with control nodes Up, the job goes to its coordinator through the job shard region (a proxy on
/// this node), and a client resubmits the rows it has not received when the coordinator's node is lost; without, a
/// splitter and device registry started on this node run it (and stop with the route). Either way the route first
/// waits until every Up device node has registered its devices with every splitter that may run the job, then keeps
/// the devices that serve the job's model, task, dtype and generation options, and refuses a job the devices would
/// silently answer with other settings.
/// </summary>
public sealed class ClusterReplicaRoute : IAsyncDisposable
{
    /// <summary>How long <see cref="OpenAsync"/> waits for the device nodes to register their devices.</summary>
    public static readonly TimeSpan RegisterTimeout = TimeSpan.FromMinutes(2);

    private static int _routes;

    private readonly ActorSystem _system;
    private readonly IReadOnlyList<IActorRef> _local;

    private ClusterReplicaRoute(ActorSystem system, IActorRef jobs, int controlNodes, IReadOnlyList<IActorRef> local)
    {
        _system = system;
        Jobs = jobs;
        ControlNodes = controlNodes;
        _local = local;
    }

    /// <summary>Where the job is submitted: the job region's proxy, or the splitter started on this node.</summary>
    public IActorRef Jobs { get; }

    /// <summary>How many control nodes were Up when the route was opened (0: the job runs on a splitter here).</summary>
    public int ControlNodes { get; }

    /// <summary>The devices serving the job's model (empty until <see cref="OpenAsync"/> has found them; the job then
    /// fails by itself, naming what the devices serve).</summary>
    public IReadOnlyList<IActorRef> Devices { get; private set; } = [];

    /// <summary>Whether a client resubmits the rows it lacks when the job's coordinator is lost: with control nodes.</summary>
    public bool ResubmitOnLoss => ControlNodes > 0;

    /// <summary>Node and device counts, and where the coordinators are: <c>2 node(s), 2 device(s)</c>.</summary>
    public string Describe() =>
        $"{Devices.Select(d => d.Path.Address).Distinct().Count()} node(s), {Devices.Count} device(s){(ControlNodes > 0 ? $", job coordinators on {ControlNodes} control node(s)" : string.Empty)}";

    /// <summary>A client that submits to <see cref="Jobs"/> with this route's resubmission policy.</summary>
    /// <param name="onResubmit">Told, one line, each time rows are submitted again.</param>
    /// <param name="onAccepted">Told, one line, when the job is accepted and under way (<see cref="ReplicaClient.OnAccepted"/>).</param>
    public ReplicaClient CreateClient(Action<string>? onResubmit = null, Action<string>? onAccepted = null) =>
        new(_system, Jobs) { ResubmitOnLoss = ResubmitOnLoss, OnResubmit = onResubmit, OnAccepted = onAccepted };

    /// <summary>
    /// A client for a node of a cluster that submits through the job region (<paramref name="jobs"/>: the region or its
    /// proxy, resolved when first needed): the rows a lost coordinator owed are submitted again.
    /// </summary>
    public static ReplicaClient RegionClient(ActorSystem system, Func<CancellationToken, Task<IActorRef>> jobs) =>
        new(system, jobs) { ResubmitOnLoss = true };

    /// <summary>
    /// Opens the route of one replica job from <paramref name="system"/> (a cluster member) and waits for the devices.
    /// </summary>
    /// <param name="job">What the job needs the devices to serve: the model (its weights), task, precision and, for
    /// generate, the decoding options (null: a serving replica's, which takes them with each request).</param>
    /// <param name="nodes">Device nodes to wait for; null: those that are Up now.</param>
    /// <exception cref="InvalidInputException">The devices serve the model for another task, dtype or generation options.</exception>
    /// <exception cref="JobFailedException">The device nodes did not register their devices within <see cref="RegisterTimeout"/>.</exception>
    public static async Task<ClusterReplicaRoute> OpenAsync(ActorSystem system, ReplicaSpec job, int? nodes, CancellationToken cancellation = default)
    {
        var control = Akka.Cluster.Cluster.Get(system).State.Members.Where(m => m.Status == MemberStatus.Up && m.HasRole(JobSharding.ControlRole)).Select(m => m.Address).ToList();
        ClusterReplicaRoute route;
        IReadOnlyList<ActorSelection> splitters;
        if (control.Count > 0)
        {
            route = new ClusterReplicaRoute(system, JobSharding.StartProxy(system), control.Count, []);
            splitters = control.Select(address => system.ActorSelection(new RootActorPath(address) / "user" / ReplicaSplitter.ActorName)).ToList();
        }
        else
        {
            // Names of this route's own: a route disposed just before (its actors told to stop, not yet gone) holds its names.
            var number = Interlocked.Increment(ref _routes);
            var splitter = system.ActorOf(ReplicaSplitter.Props([]), $"{ReplicaSplitter.ActorName}-{number}");
            route = new ClusterReplicaRoute(system, splitter, 0, [splitter, system.ActorOf(DeviceRegistry.Props(splitter), $"{JobSharding.RegistryName}-{number}")]);
            splitters = [system.ActorSelection(splitter.Path)];
        }

        try
        {
            route.Devices = await ServingDevices(await WaitForDevices(system, splitters, nodes, cancellation), job, cancellation);
            return route;
        }
        catch
        {
            await route.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the splitter and registry the route started on this node, if any.</summary>
    public ValueTask DisposeAsync()
    {
        foreach (var actor in _local)
        {
            actor.Tell(PoisonPill.Instance);
        }

        return ValueTask.CompletedTask;
    }

    // The devices serving the job's model (the job itself runs only on those, and fails naming what the devices serve
    // when there are none: the weights are the one rule, ReplicaJob's). They were loaded for a task, precision and
    // decoding options when their node started; a job asking for others would silently get the nodes' settings.
    private static async Task<IReadOnlyList<IActorRef>> ServingDevices(IReadOnlyList<IActorRef> devices, ReplicaSpec job, CancellationToken cancellation)
    {
        var statuses = await Task.WhenAll(devices.Select(d => d.Ask<DeviceStatus>(GetDeviceStatus.Instance, TimeSpan.FromSeconds(30), cancellation)));
        var serving = devices.Zip(statuses).Where(pair => job.Model.Equals(pair.Second.Spec?.Model)).ToList();
        var other = serving.Select(pair => pair.Second).FirstOrDefault(s => s.Spec!.Task != job.Task);
        if (other is not null)
        {
            throw new InvalidInputException($"the cluster's devices serve {other.Description}, not task {job.Task.Name()}: start the nodes with --task {job.Task.Name()}");
        }

        var unlike = serving.Select(pair => pair.Second).FirstOrDefault(s => !job.Equals(s.Spec));
        if (unlike is not null)
        {
            throw new InvalidInputException(
                $"the cluster's devices serve {unlike.Description}, but the job asks for ({job.Settings}): give the job the nodes' --dtype and generation options, or start the nodes with the job's");
        }

        return serving.Select(pair => pair.First).ToList();
    }

    // Every device of every Up device node (at least `nodes` of them) known to every splitter that may run the job (this
    // node's own devices, when it has some, are known by local paths).
    private static async Task<IReadOnlyList<IActorRef>> WaitForDevices(ActorSystem system, IReadOnlyList<ActorSelection> splitters, int? nodes, CancellationToken cancellation)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
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
            var registered = known.Select(devices => devices.Select(d => d.Path.Address.HasLocalScope ? cluster.SelfAddress : d.Path.Address).ToHashSet()).Aggregate((a, b) => a.Intersect(b).ToHashSet());
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
}
