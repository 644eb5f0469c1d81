using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Serving;

/// <summary>
/// The <see cref="GenerationHost"/>s of a cluster that generate with one model in one dtype, as a member (a server)
/// sees them: every Up member with the devices' role is asked which model it generates with (again every second until
/// it answers, every ten after half a minute: its engines may still be loading); a host that matches is used until its member is unreachable (back
/// when it is reachable again), removed, or the host stops. Thread-safe reads of a snapshot; disposing stops looking.
/// </summary>
public sealed class GenerationHosts : IDisposable
{
    private static readonly TimeSpan ProbeEvery = TimeSpan.FromSeconds(1);

    private readonly IActorRef _directory;
    private readonly TaskCompletionSource _found = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile Snapshot _snapshot = new([], "no device node is up in the cluster");

    private GenerationHosts(ActorSystem system, ModelIdentity model, Precision dtype, string role)
    {
        _directory = system.ActorOf(Props.Create(() => new Directory(this, model, dtype, role)));
    }

    /// <summary>The hosts a request may go to now (reachable, serving the model), in no particular order.</summary>
    public ImmutableArray<Host> Current => _snapshot.Hosts;

    /// <summary>Why no host serves the model now (one line); null while one does.</summary>
    public string? Unavailable => _snapshot.Hosts.IsEmpty ? _snapshot.Why : null;

    /// <summary>Completes once a host has been found (it may be gone again since).</summary>
    public Task WhenFound => _found.Task;

    /// <summary>Starts looking for the hosts of <paramref name="model"/> in <paramref name="dtype"/> on the members with <paramref name="role"/>.</summary>
    public static GenerationHosts Start(ActorSystem system, ModelIdentity model, Precision dtype, string role) => new(system, model, dtype, role);

    public void Dispose() => _directory.Tell(PoisonPill.Instance);

    private void Publish(ImmutableArray<Host> hosts, string why)
    {
        _snapshot = new Snapshot(hosts, why);
        if (!hosts.IsEmpty)
        {
            _found.TrySetResult();
        }
    }

    /// <summary>One node's host actor, with the longest sequence (positions) its engines take.</summary>
    public sealed record Host(IActorRef Actor, int MaxPositions)
    {
        public Address Node => Actor.Path.Address;
    }

    private sealed record Snapshot(ImmutableArray<Host> Hosts, string Why);

    private sealed class Directory : MembersOnlyActor, IWithTimers
    {
        private readonly GenerationHosts _owner;
        private readonly ModelIdentity _model;
        private readonly Precision _dtype;
        private readonly string _role;
        private readonly Dictionary<Address, int> _probing = [];
        private readonly HashSet<Address> _unreachable = [];
        private readonly Dictionary<Address, Host> _hosts = [];
        private readonly Dictionary<Address, string> _refused = [];

        public Directory(GenerationHosts owner, ModelIdentity model, Precision dtype, string role)
        {
            (_owner, _model, _dtype, _role) = (owner, model, dtype, role);
            Receive<ClusterEvent.MemberUp>(up =>
            {
                if (up.Member.HasRole(role))
                {
                    _probing.TryAdd(up.Member.Address, 0);
                    Probe();
                    Publish();
                }
            });
            Receive<ClusterEvent.MemberRemoved>(removed => Forget(removed.Member.Address));
            Receive<ClusterEvent.UnreachableMember>(unreachable =>
            {
                _unreachable.Add(unreachable.Member.Address);
                Publish();
            });
            Receive<ClusterEvent.ReachableMember>(reachable =>
            {
                _unreachable.Remove(reachable.Member.Address);
                Publish();
            });
            Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
            Receive<ProbeTick>(_ => Probe());
            Receive<ServedGeneration>(Served);
            Receive<Terminated>(terminated =>
            {
                var node = terminated.ActorRef.Path.Address;
                if (_hosts.TryGetValue(node, out var host) && host.Actor.Equals(terminated.ActorRef))
                {
                    _hosts.Remove(node);
                    Publish();
                }
            });
        }

        public ITimerScheduler Timers { get; set; } = null!;

        protected override void PreStart()
        {
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
            Timers.StartPeriodicTimer(ProbeTick.Instance, ProbeTick.Instance, ProbeEvery);
        }

        protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

        // Every second for half a minute, then every ten seconds (a node that serves no requests never answers).
        private void Probe()
        {
            foreach (var (node, probes) in _probing.ToList())
            {
                _probing[node] = probes + 1;
                if (probes < 30 || probes % 10 == 0)
                {
                    Context.ActorSelection(new RootActorPath(node) / "user" / GenerationHost.ActorName).Tell(GetServedGeneration.Instance);
                }
            }
        }

        private void Served(ServedGeneration served)
        {
            var node = Sender.Path.Address;
            if (!_probing.Remove(node))
            {
                return;
            }

            if (served.Unavailable is { } why)
            {
                _refused[node] = $"node {node}: {why}";
            }
            else if (served.Model.Equals(_model) && served.DType == _dtype)
            {
                _hosts[node] = new Host(Sender, served.MaxPositions);
                Context.Watch(Sender);
            }
            else
            {
                _refused[node] = $"node {node} generates with {served.Model} ({served.DType.Name()}), not {_model} ({_dtype.Name()})";
            }

            Publish();
        }

        private void Forget(Address node)
        {
            _probing.Remove(node);
            _unreachable.Remove(node);
            _refused.Remove(node);
            if (_hosts.Remove(node, out var host))
            {
                Context.Unwatch(host.Actor);
            }

            Publish();
        }

        private void Publish()
        {
            var hosts = _hosts.Where(h => !_unreachable.Contains(h.Key)).Select(h => h.Value).ToImmutableArray();
            var silent = _probing.Count > 0 ? $"{_probing.Count} device node(s) generate with nothing yet (still loading, or started without --serve requests)" : null;
            var why = _hosts.Count > 0 ? "every node that generates with the model is unreachable"
                : _refused.Count > 0 || silent is not null ? string.Join("; ", _refused.Values.Append(silent).OfType<string>())
                : "no device node is up in the cluster";
            _owner.Publish(hosts, why);
        }

        private sealed record ProbeTick
        {
            public static readonly ProbeTick Instance = new();
        }
    }
}
