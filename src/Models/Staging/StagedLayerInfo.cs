namespace DistributedInference.Models.Staging;

/// <summary>
/// A layer of a staged model as a partitioner sees it: its name, its size, and (0 when unknown) an estimate of the
/// floating-point operations it costs per token.
/// </summary>
public sealed record StagedLayerInfo(string Name, long ParameterCount, long ParameterBytes, long FlopsPerToken = 0);
