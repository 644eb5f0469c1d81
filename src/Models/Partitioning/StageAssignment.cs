using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Partitioning;

/// <summary>One stage of a plan: layers [FirstLayer, FirstLayer + LayerCount) of the staged model, on a device.</summary>
public sealed record StageAssignment(int Stage, int FirstLayer, int LayerCount, IReadOnlyList<string> LayerNames, long ParameterBytes, long FlopsPerToken, DeviceName Device);
