namespace DistributedInference.Actors.Cluster.Devices;

/// <summary>
/// Asks this node's <see cref="DeviceRegistry"/> for the devices usable now (answered with
/// <see cref="Replica.DeviceList"/>), then for every change (<see cref="Replica.AddDevice"/>,
/// <see cref="Replica.RemoveDevice"/>) until the sender stops. Sent by actors of the registry's own node only, so it
/// has no wire format.
/// </summary>
public sealed record SubscribeDevices
{
    public static readonly SubscribeDevices Instance = new();
}
