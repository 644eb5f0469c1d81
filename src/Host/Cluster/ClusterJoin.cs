using System.Globalization;
using Akka.Actor;
using DistributedInference.Actors.Kernel.Discovery;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Models;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// Waiting for a started node (or client) to be Up in its cluster, for at most the join timeout: <c>--join-timeout</c>,
/// else the configuration's <c>distributed-inference.join-timeout</c> (15 s by default). A node that cannot join (a
/// wrong host:port, nothing listening there) stops and says so in one line, instead of retrying for minutes; so does
/// one that the cluster refuses for a wrong secret (<see cref="MembershipGate"/>), and one no member admits in time. A
/// join that times out against a TLS seed says whose certificate is at fault (<see cref="TlsProbe"/>).
/// </summary>
public static class ClusterJoin
{
    /// <summary>
    /// The join timeout of a node: the option when given, else its configuration's (a node that finds its cluster by
    /// discovery: <c>distributed-inference.discovery.join-timeout</c>, 5 min, as its peers may start minutes apart).
    /// </summary>
    public static TimeSpan Timeout(ActorSystem system, TimeSpan? option) =>
        option ?? (ClusterDiscovery.Configured(system.Settings.Config)
            ? system.Settings.Config.GetTimeSpan("distributed-inference.discovery.join-timeout", TimeSpan.FromMinutes(5))
            : DistributedInferenceSettings.Get(system).JoinTimeout);

    /// <summary>Waits until <paramref name="system"/> is Up; on time-out terminates it.</summary>
    /// <param name="join">The host:port the node was told to join, for the message.</param>
    /// <param name="cancellation">Ends the wait (Ctrl-C before the node has joined), leaving the system to the caller.</param>
    /// <exception cref="InvalidInputException">Not Up within the timeout (exit code 2: the address is the user's to fix).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled first.</exception>
    public static async Task WhenUpAsync(ActorSystem system, IReadOnlyList<string> join, TimeSpan? option, CancellationToken cancellation = default)
    {
        var timeout = Timeout(system, option);
        var gate = MembershipGate.For(system);
        try
        {
            var up = ClusterNode.WhenUp(system, timeout);
            if (gate is not null)
            {
                // Refused before it is Up (a wrong secret), or Up and then accepted by an older member (or the oldest).
                await Task.WhenAny(up, gate.Admitted).WaitAsync(cancellation);
                if (!gate.Admitted.IsFaulted)
                {
                    await up.WaitAsync(cancellation);
                    await gate.Admitted.WaitAsync(timeout, cancellation);
                }
            }
            else
            {
                await up.WaitAsync(cancellation);
            }
        }
        catch (TimeoutException) when (ClusterNode.IsUp(system))
        {
            await system.Terminate();
            throw new InvalidInputException(string.Create(CultureInfo.InvariantCulture,
                $"no member of the cluster at {string.Join(", ", join)} accepted this node's proof of the cluster secret within {timeout.TotalSeconds:0.#} s"));
        }
        catch (TimeoutException) when (ClusterDiscovery.Configured(system.Settings.Config))
        {
            var config = system.Settings.Config;
            var method = config.GetString("distributed-inference.discovery.method");
            var required = config.GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr");
            var points = config.GetStringList($"akka.discovery.config.services.{config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.service-name")}.endpoints");
            await system.Terminate();
            var what = method == ClusterDiscovery.Config
                ? $"at least {required} of the contact points {string.Join(", ", points)} must be di nodes run with --discovery config and the same list"
                : $"at least {required} running pods labelled app={config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.service-name")} must serve a container port named {ClusterDiscovery.ManagementPortName}, and this pod's service account must be allowed to list pods";
            throw new InvalidInputException(string.Create(CultureInfo.InvariantCulture,
                $"could not find or form a cluster by {method} discovery within {timeout.TotalSeconds:0.#} s: {what} (--join-timeout SECONDS to wait longer)"));
        }
        catch (TimeoutException)
        {
            var security = ClusterSecurity.From(system.Settings.Config);
            await system.Terminate();
            var where = join.Count > 0 ? $"the cluster at {string.Join(", ", join)}" : "its own cluster";
            var reason = await TlsProbe.DiagnoseAsync(join, security)
                ?? "is a di node listening there? (--join-timeout SECONDS or distributed-inference.join-timeout to wait longer)";
            throw new InvalidInputException(string.Create(CultureInfo.InvariantCulture,
                $"could not join {where} within {timeout.TotalSeconds:0.#} s: {reason}"));
        }

        if (gate is not null && gate.Admitted.IsFaulted)
        {
            await system.Terminate();
            throw gate.Admitted.Exception!.InnerException!;
        }
    }
}
