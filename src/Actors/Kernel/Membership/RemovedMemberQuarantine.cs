using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Remote;
using DistributedInference.Actors.Kernel.Memory;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>
/// Drops what Akka.Remote keeps for a member that left the cluster: Akka.Cluster quarantines a removed member only
/// when it was downed, so for every member that left gracefully (each <c>di infer --join</c> client does) a node kept
/// an endpoint supervisor with its system-message buffers for <c>akka.remote.quarantine-after-silence</c> (2 days):
/// one more actor and its state per client served. This actor (<c>/system/removed-member-quarantine</c>, one per
/// cluster process) quarantines each removed member's incarnation (address and uid)
/// <c>distributed-inference.quarantine-removed-members-after</c> after its removal, as Akka's own Artery remoting
/// does (<c>ClusterRemoteWatcher</c>, <c>quarantine-removed-node-after</c>): a removed incarnation never comes back
/// (a process that joins again is a new one), so nothing is lost. Once the removals of a burst are quarantined it also
/// runs one aggressive garbage collection and trims glibc's heap (<see cref="MemoryRelease"/>; one per burst of removals): what a departed client left behind is
/// garbage by then, and without it the GC's generation-2 budget grows over the first clients a node serves (measured:
/// RSS +20 MB over 15 sequential <c>--join</c> clients of which the live heap kept 15 KB each; docs/design.md), so a
/// long-running node's memory would not settle where it was after its first clients. One collection per burst of
/// removals, tens of milliseconds on a node's heap (its model's weights are native memory, not the managed heap).
/// </summary>
public sealed class RemovedMemberQuarantine : ReceiveActor, IWithTimers
{
    public const string ActorName = "removed-member-quarantine";

    // Removed members, remembered for a minute each (their last messages, and the quarantine's log line, come within
    // seconds): a node serves clients without end.
    private static readonly TimeSpan Remembered = TimeSpan.FromMinutes(1);
    private static readonly ConditionalWeakTable<ActorSystem, ConcurrentDictionary<Address, DateTime>> Removed = new();

    // After the first quarantine of a burst: the endpoint's state it dropped is garbage by then.
    private static readonly TimeSpan CompactAfterQuarantine = TimeSpan.FromSeconds(1);

    private readonly TimeSpan _after;

    public RemovedMemberQuarantine(TimeSpan after)
    {
        _after = after;
        Receive<ClusterEvent.MemberRemoved>(removed =>
        {
            var recent = Removed.GetValue(Context.System, _ => new ConcurrentDictionary<Address, DateTime>());
            foreach (var old in recent.Where(entry => DateTime.UtcNow - entry.Value > Remembered))
            {
                recent.TryRemove(old.Key, out _);
            }

            recent[removed.Member.Address] = DateTime.UtcNow;
            Timers.StartSingleTimer(removed.Member.UniqueAddress, new QuarantineNow(removed.Member.UniqueAddress), _after);
            // One release per burst, due after the burst's first quarantine: not pushed back by each removal (clients
            // leaving every few seconds would postpone it for ever).
            if (!Timers.IsTimerActive(CompactHeap.Instance))
            {
                Timers.StartSingleTimer(CompactHeap.Instance, CompactHeap.Instance, _after + CompactAfterQuarantine);
            }
        });
        Receive<QuarantineNow>(now =>
        {
            Context.GetLogger().Debug("quarantining {0} (uid {1}): removed from the cluster {2} ago", now.Member.Address, now.Member.Uid, _after);
            ((IRemoteActorRefProvider)((ExtendedActorSystem)Context.System).Provider).Quarantine(now.Member.Address, now.Member.Uid);
        });
        Receive<CompactHeap>(_ =>
        {
            var released = MemoryRelease.Run();
            Context.GetLogger().Debug("released memory after members left: GC heap {0:0.0} -> {1:0.0} MB committed, native heap {2}",
                released.CommittedBefore / 1e6, released.CommittedAfter / 1e6, released.NativeTrimmed ? "trimmed" : "not trimmed");
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// Whether <paramref name="address"/> was removed from <paramref name="system"/>'s cluster within the last minute: its
    /// last messages, and the quarantine this node makes of it (which Akka.Remote logs as a warning), are normal cluster life.
    /// </summary>
    public static bool RemovedRecently(ActorSystem system, Address address) =>
        Removed.TryGetValue(system, out var addresses) && addresses.ContainsKey(address);

    /// <summary>Starts the quarantine of removed members on <paramref name="system"/> (a cluster process), once.</summary>
    /// <param name="after">How long after a removal; null: <c>distributed-inference.quarantine-removed-members-after</c>.</param>
    public static void Start(ActorSystem system, TimeSpan? after = null)
    {
        if (system is ExtendedActorSystem { Provider: IClusterActorRefProvider } extended)
        {
            var wait = after ?? system.Settings.Config.GetTimeSpan("distributed-inference.quarantine-removed-members-after", TimeSpan.FromSeconds(5));
            extended.SystemActorOf(Props.Create(() => new RemovedMemberQuarantine(wait)), ActorName);
        }
    }

    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberRemoved));

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    private sealed record QuarantineNow(UniqueAddress Member);

    private sealed class CompactHeap
    {
        public static readonly CompactHeap Instance = new();
    }
}
