using DistributedInference.Models.Runtime;

namespace DistributedInference.Host.Batch;

/// <summary>
/// <c>di batch</c>'s settings. <paramref name="Join"/> empty: the requests run on this process's
/// <paramref name="Devices"/>; else on the devices of the cluster joined (nodes started with
/// <c>di node --serve requests</c> for decoders). <paramref name="Window"/>: sequences read ahead and grouped by
/// length before they are cut into jobs of <paramref name="JobRows"/> rows; at most <paramref name="JobsInFlight"/> jobs
/// run at once; each device runs <paramref name="MaxBatchSize"/> rows per forward pass.
/// </summary>
/// <param name="Ordered">Write the output in input order (a reorder buffer of at most the requests in flight).</param>
/// <param name="Restart">Empty the output and start over instead of resuming.</param>
/// <param name="ProgressEvery">When stderr is not a terminal: one progress line this often.</param>
/// <param name="MaxRequestBytes">A longer input line is answered <c>request_too_large</c> without being read whole.</param>
public sealed record BatchOptions(
    string Model,
    string Input,
    string Output,
    string Devices = "cpu",
    IReadOnlyList<string>? Join = null,
    Precision DType = Precision.Fp32,
    long Seed = 0,
    string? ServedModelName = null,
    string? ChatTemplate = null,
    int MaxBatchSize = 8,
    int Window = 1024,
    int JobRows = 256,
    int JobsInFlight = 4,
    bool GroupByLength = true,
    bool Ordered = false,
    bool Restart = false,
    TimeSpan? ProgressEvery = null,
    bool Quiet = false,
    string? JsonSummary = null,
    TimeSpan? JoinTimeout = null,
    string? Secret = null,
    string? TlsCertificate = null,
    string? LibTorch = null,
    long MaxRequestBytes = 16 * 1024 * 1024)
{
    /// <summary>The serving back end's settings for the same model, devices and cluster.</summary>
    /// <remarks>di batch sends its requests as replica jobs of many rows (<c>--job-rows</c>), not one by one: the replica
    /// runtime, not the continuous-batching engine.</remarks>
    public Serving.ServeOptions Serving() => new(
        Model, Devices, Join: Join, DType: DType, Seed: Seed, ServedModelName: ServedModelName, ChatTemplate: ChatTemplate,
        JoinTimeout: JoinTimeout, Secret: Secret, TlsCertificate: TlsCertificate, LibTorch: LibTorch, ContinuousBatching: false);
}
