using System.Diagnostics.Metrics;
using Akka.Actor;
using Akka.Cluster;
using DistributedInference.Actors.Kernel.Telemetry;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>
/// <c>di.cluster.members</c>: the members each cluster process of this process sees now, by <c>status</c> as Akka names
/// it (<c>Joining</c>, <c>Up</c>, <c>Leaving</c>, ...) and <c>reachable</c> (<c>true</c> or <c>false</c>, as this
/// node's failure detector judges), with <c>di.node</c> (the observing node's address).
/// </summary>
public static class ClusterMetrics
{
    private static readonly List<WeakReference<ActorSystem>> Systems = [];

    static ClusterMetrics() =>
        Instrumentation.Meter.CreateObservableGauge(
            Instrumentation.Prefix + "cluster.members", Observe, "{member}", "Cluster members this node sees, by status and reachability.");

    /// <summary>Reports <paramref name="system"/>'s view of its cluster while it runs.</summary>
    public static void Track(ActorSystem system)
    {
        lock (Systems)
        {
            Systems.RemoveAll(reference => !reference.TryGetTarget(out var s) || s.WhenTerminated.IsCompleted);
            Systems.Add(new WeakReference<ActorSystem>(system));
        }
    }

    private static IEnumerable<Measurement<int>> Observe()
    {
        var measurements = new List<Measurement<int>>();
        lock (Systems)
        {
            foreach (var reference in Systems)
            {
                if (!reference.TryGetTarget(out var system) || system.WhenTerminated.IsCompleted)
                {
                    continue;
                }

                var cluster = Akka.Cluster.Cluster.Get(system);
                var state = cluster.State;
                var node = new KeyValuePair<string, object?>("di.node", cluster.SelfAddress.ToString());
                foreach (var group in state.Members.GroupBy(m => (m.Status, Reachable: !state.Unreachable.Contains(m))))
                {
                    measurements.Add(new Measurement<int>(group.Count(), node,
                        new("status", group.Key.Status.ToString()), new("reachable", group.Key.Reachable ? "true" : "false")));
                }
            }
        }

        return measurements;
    }
}
