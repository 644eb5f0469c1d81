namespace DistributedInference.Models.Staging;

/// <summary>A layer of a staged model as a partitioner sees it: its name and its size.</summary>
public sealed record StagedLayerInfo(string Name, long ParameterCount, long ParameterBytes);
