using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace DistributedInference.Actors.Kernel.Settings;

/// <summary>
/// Akka's log on stderr, one line an event: stdout belongs to results (di writes JSON lines there).
/// Configured in hocon/ as the only logger. Normal cluster life (a client leaving, a node removed, a connection closed
/// by its other end) is information, not a warning or an error (<see cref="ClusterLogNoise"/>), so it shows only at
/// <c>akka.loglevel = INFO</c>; no line carries a stack trace.
/// </summary>
public sealed class StandardErrorLogger : ReceiveActor
{
    public StandardErrorLogger()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(HandleLogEvent);
    }

    /// <summary>
    /// Where every actor system of this process logs: null (the default) for stderr; a host app may send the lines to a
    /// file or to <see cref="TextWriter.Null"/> (di does, unless <c>--verbose</c> or <c>--log-file</c>). The writer
    /// must be thread-safe (<see cref="TextWriter.Synchronized"/>).
    /// </summary>
    public static TextWriter? Output { get; set; }

    private void HandleLogEvent(LogEvent logEvent)
    {
        var (self, peer) = Membership();
        var system = Context.System;
        var (level, text) = ClusterLogNoise.Classify(logEvent, self, peer, address => Kernel.Membership.RemovedMemberQuarantine.RemovedRecently(system, address));
        if (level < Logging.LogLevelFor(Context.System.Settings.LogLevel))
        {
            return;
        }

        (Output ?? Console.Error).WriteLine($"[{level.ToString().Replace("Level", string.Empty, StringComparison.Ordinal).ToUpperInvariant()}] {logEvent.LogSource}: {text}");
    }

    // What this node knows of other nodes; nothing before it is a member itself (or before its cluster extension
    // exists: the logger never creates it). A node that leaves still knows its cluster: a client leaving at the end of
    // its job hears of a node lost during the job as everyone else does.
    private (Address? Self, Func<Address, ClusterLogNoise.Peer>? Peer) Membership()
    {
        if (!Context.System.HasExtension<Akka.Cluster.Cluster>())
        {
            return (null, null);
        }

        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var state = cluster.State;
        var active = state.Members.Where(m => m.Status is MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up).Select(m => m.Address).ToHashSet();
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        ClusterLogNoise.Peer Peer(Address address) =>
            !active.Contains(address) ? ClusterLogNoise.Peer.Departed : unreachable.Contains(address) ? ClusterLogNoise.Peer.Unreachable : ClusterLogNoise.Peer.Active;
        var member = cluster.SelfMember.Status is MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting
                     && state.Members.Any(m => m.Address.Equals(cluster.SelfAddress));
        return (cluster.SelfAddress, member ? Peer : null);
    }
}
