using Akka.Actor;
using Akka.Cluster;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Cluster;

/// <summary>One device actor of a member, as <c>di status</c> shows it.</summary>
/// <param name="Device">The device (<c>cpu</c>, <c>cuda:1</c>).</param>
/// <param name="Model">The model identity it serves, null while it loads or when it did not answer.</param>
/// <param name="DType">The replica's dtype (<c>fp32</c>, <c>bf16</c>, ...), null while it loads.</param>
/// <param name="Task">The replica's task (<c>generate</c>, <c>classify</c>, ...), null while it loads.</param>
/// <param name="State"><c>idle</c>, <c>busy</c> (batches queued), <c>loading</c>, or <c>not answering</c> (a device answers
/// between two batches: one computing a long batch, or loading its model, answers late).</param>
/// <param name="Queue">Batches waiting on it.</param>
/// <param name="CompletedBatches">Batches it finished since it started.</param>
/// <param name="BusySeconds">Seconds it spent computing since it started.</param>
public sealed record DeviceView(string Device, string? Model, [property: System.Text.Json.Serialization.JsonPropertyName("dtype")] string? DType, string? Task, string State, int Queue, long CompletedBatches, double BusySeconds);

/// <summary>One member of the cluster, as the observing client sees it.</summary>
/// <param name="Address">host:port of its Akka endpoint.</param>
/// <param name="Roles">Its roles (<c>device</c>, <c>control</c>, <c>client</c>).</param>
/// <param name="Status">Its status as Akka names it: <c>Joining</c>, <c>WeaklyUp</c>, <c>Up</c>, <c>Leaving</c>, <c>Exiting</c>, <c>Down</c>.</param>
/// <param name="Reachable">Whether the observer's failure detector reaches it.</param>
/// <param name="AgeRank">1 for the oldest member (the one that became Up first), 2 for the next, ...; 0 for one not Up yet.</param>
/// <param name="Self">Whether it is the observing client itself.</param>
/// <param name="Devices">Its device actors (empty for a member without the device role); null when its device manager did not answer.</param>
public sealed record MemberView(string Address, IReadOnlyList<string> Roles, string Status, bool Reachable, int AgeRank, bool Self, IReadOnlyList<DeviceView>? Devices);

/// <summary>A cluster's members and their devices, seen from one member.</summary>
/// <param name="Leader">The leader's host:port, null while there is none.</param>
public sealed record ClusterView(IReadOnlyList<MemberView> Members, string? Leader);

/// <summary>
/// What <c>di status</c> reads from a cluster it joined as a client: <see cref="Akka.Cluster.Cluster.State"/> (members,
/// status, reachability) and each reachable device member's devices (<see cref="NodeDevices"/>).
/// </summary>
public static class ClusterStatus
{
    /// <summary>The cluster as <paramref name="client"/> (a joined member) sees it now.</summary>
    /// <param name="timeout">How long each node's devices may take to answer.</param>
    public static async Task<ClusterView> ReadAsync(ActorSystem client, TimeSpan timeout, CancellationToken cancellation = default)
    {
        var cluster = Akka.Cluster.Cluster.Get(client);
        var state = cluster.State;
        var byAge = state.Members.Where(m => m.Status != MemberStatus.Joining && m.Status != MemberStatus.WeaklyUp).Order(Member.AgeOrdering).ToList();
        var members = state.Members.OrderBy(m => m.Address.Host).ThenBy(m => m.Address.Port).Select(async member =>
        {
            var reachable = !state.Unreachable.Contains(member);
            var devices = !member.HasRole(DeviceManager.Role) ? [] : reachable ? await DevicesAsync(client, member.Address, timeout, cancellation) : null;
            return new MemberView(
                HostPort(member.Address), member.Roles.Order(StringComparer.Ordinal).ToList(), member.Status.ToString(), reachable,
                byAge.IndexOf(member) + 1, member.Address.Equals(cluster.SelfAddress), devices);
        });
        return new ClusterView(await Task.WhenAll(members), state.Leader is { } leader ? HostPort(leader) : null);
    }

    private static async Task<IReadOnlyList<DeviceView>?> DevicesAsync(ActorSystem client, Address node, TimeSpan timeout, CancellationToken cancellation)
    {
        try
        {
            var statuses = await NodeDevices.AskAsync(client, node, timeout, cancellation);
            return statuses.Select(answer => answer.Status is not { } status
                ? new DeviceView(answer.Device.Path.Name, null, null, null, "not answering", 0, 0, 0)
                : new DeviceView(status.Device, status.Spec?.Model.ToString(), status.Spec?.Precision.Name(), status.Spec?.Task.Name(),
                    status.Spec is null ? "loading" : status.QueueLength > 0 ? "busy" : "idle", status.QueueLength, status.CompletedBatches, status.BusyTime.TotalSeconds)).ToList();
        }
        catch (AskTimeoutException)
        {
            return null;
        }
    }

    private static string HostPort(Address address) => $"{address.Host}:{address.Port}";
}
