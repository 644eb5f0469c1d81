namespace DistributedInference.Host.Inference;

/// <summary>A <c>di infer</c> job as the command line gives it, before validation.</summary>
public sealed record InferOptions(
    string Model,
    string Task,
    string? InputIdsPath,
    IReadOnlyList<string>? Prompts,
    string? PromptsFile,
    string? OutputPath,
    string Mode,
    string Devices,
    bool ApplyPadding,
    string DType,
    int MaxBatchSize,
    int MaxNewTokens,
    long Seed,
    string? LibTorch,
    string SplitPoints = "auto",
    int? NumChunks = null,
    bool GatherOutput = false,
    IReadOnlyList<string>? ClusterSeeds = null,
    bool Strict = false,
    TimeSpan? JoinTimeout = null)
{
    /// <summary>Client mode (<c>--join</c>): the job runs on the cluster these nodes (host:port) belong to, not on local devices.</summary>
    public bool OnCluster => ClusterSeeds is { Count: > 0 };
}
