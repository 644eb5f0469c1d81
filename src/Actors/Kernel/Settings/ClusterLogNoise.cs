using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Event;

namespace DistributedInference.Actors.Kernel.Settings;

/// <summary>
/// Tells Akka's log events about normal cluster life from real trouble. A client that leaves, a node that is removed,
/// a connection closed by its other end: Akka.Remote reports these as warnings and errors, often with a stack trace in
/// the text. They are information, and lowered to <see cref="LogLevel.InfoLevel"/>: an event caused by a connection
/// its other end closed (Akka.Remote's <c>EndpointDisassociatedException</c>); an event that names only nodes that are
/// not (or no longer) active members, while this node is a member (leaving included); a remoting event (a refused connection, a gated
/// address, every few seconds) about nodes the cluster already reports as unreachable, which it says once itself; the
/// quarantine of a removed member this node made itself (<see cref="Membership.RemovedMemberQuarantine"/>), even while
/// it leaves. Every line is cut to its first line: no stack traces in the log.
/// </summary>
public static partial class ClusterLogNoise
{
    // Akka.Remote's (internal) exception for a connection its other end closed.
    private const string ClosedByPeer = "EndpointDisassociatedException";

    // Akka.Remote's QuarantinedEvent, as it is logged.
    private const string Quarantined = "UID is now quarantined";

    /// <summary>What this node knows of another node.</summary>
    public enum Peer
    {
        /// <summary>A member that is Joining, WeaklyUp or Up, and reachable.</summary>
        Active,

        /// <summary>An active member the failure detector reports as unreachable.</summary>
        Unreachable,

        /// <summary>Leaving, exiting, down, removed, or never a member.</summary>
        Departed,
    }

    /// <summary>The level an event is logged at and its text, one line.</summary>
    /// <param name="logEvent">Akka's event.</param>
    /// <param name="self">This node's own address (never counted as another node).</param>
    /// <param name="peer">
    /// What this node knows of an address; null when it is not an active member itself (still joining, or without a
    /// cluster, or removed): then only closed connections are lowered.
    /// </param>
    /// <param name="quarantinedAfterRemoval">Whether an address was removed from this node's cluster lately (this node quarantines it itself); null: none.</param>
    public static (LogLevel Level, string Text) Classify(LogEvent logEvent, Address? self, Func<Address, Peer>? peer, Func<Address, bool>? quarantinedAfterRemoval = null)
    {
        var message = logEvent.Message?.ToString() ?? string.Empty;
        var text = FirstLine(message);
        if (logEvent.Cause is { } cause)
        {
            text += $" ({cause.GetType().Name}: {FirstLine(cause.Message)})";
        }

        var level = logEvent.LogLevel();
        if (level < LogLevel.WarningLevel)
        {
            return (level, text);
        }

        if (logEvent.Cause?.GetType().Name == ClosedByPeer || message.Contains(ClosedByPeer, StringComparison.Ordinal))
        {
            return (LogLevel.InfoLevel, text);
        }

        // A sharding proxy asks again for shard homes while a lost node is being removed and its shards move: the
        // retries of a recovery in progress, not a fault of their own.
        if (logEvent.LogSource.Contains("/system/sharding/", StringComparison.Ordinal)
            && (message.Contains("Requested shard homes", StringComparison.Ordinal) || message.Contains("Trying to register to coordinator", StringComparison.Ordinal)))
        {
            return (LogLevel.InfoLevel, text);
        }

        var others = AddressPattern().Matches(message).Select(m => Address.Parse(m.Value)).Where(a => !a.Equals(self)).Distinct().ToList();
        if (quarantinedAfterRemoval is not null && others.Count > 0 && message.Contains(Quarantined, StringComparison.Ordinal) && others.All(quarantinedAfterRemoval))
        {
            return (LogLevel.InfoLevel, text);
        }

        if (peer is null || others.Count == 0)
        {
            return (level, text);
        }

        var states = others.Select(peer).ToList();
        var remoting = logEvent.LogSource.Contains("/system/endpointManager/", StringComparison.Ordinal) || logEvent.LogSource.StartsWith("remoting", StringComparison.Ordinal);
        var normal = states.All(s => s == Peer.Departed) || (remoting && states.All(s => s != Peer.Active));
        return (normal ? LogLevel.InfoLevel : level, text);
    }

    private static string FirstLine(string text)
    {
        var end = text.IndexOfAny(['\r', '\n']);
        return (end < 0 ? text : text[..end]).TrimEnd();
    }

    [GeneratedRegex(@"akka(\.tcp)?://[A-Za-z0-9_-]+@[^\s:\]/]+:\d+")]
    private static partial Regex AddressPattern();
}
