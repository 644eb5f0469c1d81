using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster.Devices;

/// <summary>Asks a node's <see cref="DeviceManager"/> for its device actors: answered with <see cref="DeviceList"/>.</summary>
public sealed record GetLocalDevices : Kernel.Wire.IWireMessage
{
    public static readonly GetLocalDevices Instance = new();
}
