using DistributedInference.Models.Runtime;

namespace DistributedInference.Host.Serving;

/// <summary>
/// <c>di serve</c>'s settings. <paramref name="Join"/> empty: the model runs on this process's <paramref name="Devices"/>;
/// else on the devices of the cluster joined (nodes started with <c>di node --serve requests</c> for decoders).
/// <paramref name="ApiKey"/>: requests must send <c>Authorization: Bearer KEY</c>. At most
/// <paramref name="MaxConcurrentRequests"/> requests run or wait at once (more get 429); request bodies are at most
/// <paramref name="MaxRequestBodyBytes"/> (more get 413); on SIGTERM in-flight requests get <paramref name="DrainTimeout"/>.
/// <paramref name="HttpsCertificate"/>: a PKCS#12 file; the server speaks HTTPS with it (Kestrel's certificate).
/// <paramref name="ContinuousBatching"/> (decoders): each device runs a
/// <see cref="Models.Serving.Batching.ContinuousBatchingEngine"/>, with <paramref name="Batching"/>'s cache and limits on this
/// process's devices, with the nodes' defaults on a cluster (<paramref name="Join"/>); false: each request is a replica job
/// of its own. <paramref name="Mode"/> pipeline (a decoder bigger than one device): the model is cut into one stage per
/// device of <paramref name="Devices"/> (at <paramref name="SplitPoints"/>) and served by <paramref name="NumChunks"/>
/// continuous-batching engines over the stages (<see cref="Actors.Pipeline.PipelineEngines"/>; default: one per stage).
/// </summary>
public sealed record ServeOptions(
    string Model,
    string Devices = "cpu",
    string Host = "127.0.0.1",
    int Port = 8000,
    IReadOnlyList<string>? Join = null,
    string? ApiKey = null,
    Precision DType = Precision.Fp32,
    long Seed = 0,
    string? ServedModelName = null,
    string? ChatTemplate = null,
    int MaxConcurrentRequests = 64,
    long MaxRequestBodyBytes = 16 * 1024 * 1024,
    TimeSpan? DrainTimeout = null,
    TimeSpan? JoinTimeout = null,
    string? Secret = null,
    string? TlsCertificate = null,
    string? LibTorch = null,
    string? HttpsCertificate = null,
    bool ContinuousBatching = true,
    Models.Serving.Batching.ContinuousBatchingOptions? Batching = null,
    Inference.Mode Mode = Inference.Mode.Replica,
    string SplitPoints = "auto",
    int? NumChunks = null)
{
    /// <summary>The password of <see cref="HttpsCertificate"/> (a PKCS#12 file): <c>DI_HTTPS_PASSWORD</c>.</summary>
    public const string HttpsPasswordVariable = "DI_HTTPS_PASSWORD";

    /// <summary>How long in-flight requests may take to finish after SIGTERM (default 30 s).</summary>
    public TimeSpan Drain => DrainTimeout ?? TimeSpan.FromSeconds(30);
}
