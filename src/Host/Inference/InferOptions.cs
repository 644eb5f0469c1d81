using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Inference;

/// <summary>
/// A <c>di infer</c> job as the command line gives it (task, mode and dtype parsed once, by the command line), before the
/// checks of <see cref="PreparedJob.From"/>; <paramref name="SecretFile"/> and <paramref name="TlsCertificate"/> are for
/// client mode (<c>--join</c>); <paramref name="Image"/> holds the options of task text-to-image.
/// </summary>
public sealed record InferOptions(
    string Model,
    InferenceTask Task,
    string? InputIdsPath,
    IReadOnlyList<string>? Prompts,
    string? PromptsFile,
    string? OutputPath,
    Mode Mode,
    string Devices,
    bool ApplyPadding,
    Precision DType,
    int MaxBatchSize,
    int MaxNewTokens,
    long Seed,
    string? LibTorch,
    string SplitPoints = "auto",
    int? NumChunks = null,
    bool GatherOutput = false,
    IReadOnlyList<string>? ClusterSeeds = null,
    bool Strict = false,
    GenerationOptions? Generation = null,
    bool Quiet = false,
    string? JsonSummaryPath = null,
    TimeSpan? JoinTimeout = null,
    string? SecretFile = null,
    string? TlsCertificate = null,
    string? MaxMemory = null,
    bool AllowPartial = false,
    TextToImageRequest? Image = null)
{
    /// <summary>How task generate picks tokens: <see cref="Generation"/> if given, else greedy with --max-new-tokens.</summary>
    public GenerationOptions GenerationOrGreedy => (Generation ?? GenerationOptions.Greedy) with { MaxNewTokens = MaxNewTokens, Seed = Seed };

    /// <summary>
    /// Where the job's informational lines go (the pipeline plan, each stage, rates, the summary): <paramref name="stderr"/>,
    /// or nowhere with <c>--quiet</c>. Warnings and errors always go to stderr.
    /// </summary>
    public TextWriter Informational(TextWriter stderr) => Quiet ? TextWriter.Null : stderr;

    /// <summary>Client mode (<c>--join</c>): the job runs on the cluster these nodes (host:port) belong to, not on local devices.</summary>
    public bool OnCluster => ClusterSeeds is { Count: > 0 };
}
