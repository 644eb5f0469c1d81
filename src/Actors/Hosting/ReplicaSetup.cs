using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Hosting;

/// <summary>What a host app gives replica mode: its devices and how to build the model on one.</summary>
public sealed class ReplicaSetup
{
    public List<DeviceName> Devices { get; } = [];

    public ReplicaModelFactory? Model { get; set; }

    /// <summary>Adds devices by name: <c>OnDevices("cuda:0", "cuda:1")</c>, or <c>OnDevices("cpu,cpu")</c>.</summary>
    public ReplicaSetup OnDevices(params string[] devices)
    {
        Devices.AddRange(devices.SelectMany(DeviceName.ParseList));
        return this;
    }

    public ReplicaSetup WithModel(ReplicaModelFactory model)
    {
        Model = model;
        return this;
    }

    internal ReplicaModelFactory Validate()
    {
        if (Devices.Count == 0)
        {
            throw new InvalidInputException("replica mode needs at least one device (OnDevices)");
        }

        return Model ?? throw new InvalidInputException("replica mode needs a model (WithModel)");
    }
}
