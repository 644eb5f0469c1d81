using Akka.Actor;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// What a node's device actors say of themselves (<see cref="DeviceStatus"/>: model, queue, busy time), asked of its
/// <c>/user/devices</c> manager and then of each device; <c>di status</c> and <c>di node</c>'s readiness read it.
/// </summary>
public static class NodeDevices
{
    /// <summary>
    /// The status of each device actor of the node at <paramref name="node"/>, in the manager's order; null for a device
    /// that did not answer within <paramref name="timeout"/> (one loading its model answers once loaded).
    /// </summary>
    /// <exception cref="AskTimeoutException">The node's device manager did not answer (no such node, or no device role).</exception>
    public static async Task<IReadOnlyList<DeviceStatus?>> AskAsync(ActorSystem system, Address node, TimeSpan timeout, CancellationToken cancellation = default)
    {
        var manager = system.ActorSelection(new RootActorPath(node) / "user" / DeviceManager.ActorName);
        var list = await manager.Ask<DeviceList>(GetLocalDevices.Instance, timeout, cancellation);
        var answers = list.Devices.Select(async device =>
        {
            try
            {
                return await device.Ask<DeviceStatus>(GetDeviceStatus.Instance, timeout, cancellation);
            }
            catch (AskTimeoutException)
            {
                return null;
            }
        });
        return await Task.WhenAll(answers);
    }
}
