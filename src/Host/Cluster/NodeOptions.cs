namespace DistributedInference.Host.Cluster;

/// <summary>A <c>di node</c>: where it listens, whom it joins, what it offers, and the model its devices hold.</summary>
public sealed record NodeOptions(
    string Host,
    int Port,
    IReadOnlyList<string> Seeds,
    IReadOnlyList<string> Roles,
    string Devices,
    string? ConfigFile,
    string Model,
    string Task,
    string DType,
    int MaxNewTokens,
    long ModelSeed,
    string? LibTorch);
