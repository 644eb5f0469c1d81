using System.Globalization;
using Akka.Actor;
using DistributedInference.Actors.Configuration;
using DistributedInference.Models;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// Waiting for a started node (or client) to be Up in its cluster, for at most the join timeout: <c>--join-timeout</c>,
/// else the configuration's <c>distributed-inference.join-timeout</c> (15 s by default). A node that cannot join (a
/// wrong host:port, nothing listening there) stops and says so in one line, instead of retrying for minutes.
/// </summary>
public static class ClusterJoin
{
    /// <summary>The join timeout of a node: the option when given, else its configuration's.</summary>
    public static TimeSpan Timeout(ActorSystem system, TimeSpan? option) =>
        option ?? DistributedInferenceSettings.From(system.Settings.Config).JoinTimeout;

    /// <summary>Waits until <paramref name="system"/> is Up; on time-out terminates it.</summary>
    /// <param name="join">The host:port the node was told to join, for the message.</param>
    /// <exception cref="InvalidInputException">Not Up within the timeout (exit code 2: the address is the user's to fix).</exception>
    public static async Task WhenUpAsync(ActorSystem system, IReadOnlyList<string> join, TimeSpan? option)
    {
        var timeout = Timeout(system, option);
        try
        {
            await ClusterNode.WhenUp(system, timeout);
        }
        catch (TimeoutException)
        {
            await system.Terminate();
            var where = join.Count > 0 ? $"the cluster at {string.Join(", ", join)}" : "its own cluster";
            throw new InvalidInputException(string.Create(CultureInfo.InvariantCulture,
                $"could not join {where} within {timeout.TotalSeconds:0.#} s: is a di node listening there? (--join-timeout SECONDS or distributed-inference.join-timeout to wait longer)"));
        }
    }
}
