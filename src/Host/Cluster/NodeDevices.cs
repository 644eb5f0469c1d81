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
    /// Each device actor of the node at <paramref name="node"/> with its status, in the manager's order; the status is
    /// null for a device that did not answer within <paramref name="timeout"/>: a device answers between two batches,
    /// so one computing a long batch (or loading its model) answers late.
    /// </summary>
    /// <exception cref="AskTimeoutException">The node's device manager did not answer (no such node, or no device role).</exception>
    public static async Task<IReadOnlyList<(IActorRef Device, DeviceStatus? Status)>> AskAsync(ActorSystem system, Address node, TimeSpan timeout, CancellationToken cancellation = default)
    {
        var manager = system.ActorSelection(new RootActorPath(node) / "user" / DeviceManager.ActorName);
        var list = await manager.Ask<DeviceList>(GetLocalDevices.Instance, timeout, cancellation);
        var answers = list.Devices.Select(async device =>
        {
            try
            {
                return (device, await device.Ask<DeviceStatus>(GetDeviceStatus.Instance, timeout, cancellation));
            }
            catch (AskTimeoutException)
            {
                return (device, (DeviceStatus?)null);
            }
        });
        return await Task.WhenAll(answers);
    }
}
