using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Tasks;

/// <summary>Builds a model replica on a given device; called once per device actor, on that actor's thread.</summary>
public delegate IReplicaModel ReplicaModelFactory(DeviceName device);
