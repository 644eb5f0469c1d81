using DistributedInference.Actors.Kernel.Discovery;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// A <c>di node</c>: where it listens, the nodes it joins (<c>--join</c>, host:port; none: it starts the cluster), what it
/// offers, and the model its devices hold (<paramref name="Seed"/>: a built-in model's random weights);
/// <paramref name="JoinTimeout"/> (<c>--join-timeout</c>) overrides the configuration's <c>distributed-inference.join-timeout</c>;
/// <paramref name="Secret"/> is the cluster secret (<see cref="ClusterSecret.Read"/>; null: none, loopback only) and
/// <paramref name="TlsCertificate"/> a PKCS#12 file for mutual TLS (<c>--tls-certificate</c>, password in
/// <c>DI_TLS_PASSWORD</c>), both over the configuration's <c>distributed-inference.security</c>;
/// <paramref name="Discovery"/> (<c>--discovery</c>) finds the cluster through Cluster Bootstrap instead of <paramref name="Join"/>;
/// <paramref name="Batching"/>: the cache and limits of the continuous-batching engines of <c>--serve requests</c> (null: the defaults).
/// </summary>
public sealed record NodeOptions(
    string Host,
    int Port,
    IReadOnlyList<string> Join,
    IReadOnlyList<string> Roles,
    string Devices,
    string? ConfigFile,
    string Model,
    InferenceTask Task,
    Precision DType,
    int MaxNewTokens,
    long Seed,
    string? LibTorch,
    IReadOnlyList<string>? Serve = null,
    GenerationOptions? Generation = null,
    TimeSpan? JoinTimeout = null,
    string? Secret = null,
    string? TlsCertificate = null,
    ClusterDiscovery? Discovery = null,
    Models.Serving.Batching.ContinuousBatchingOptions? Batching = null)
{
    public const string ServeReplica = "replica";
    public const string ServePipeline = "pipeline";

    /// <summary>Devices that run served requests (<c>di serve --join</c>): each loads a <see cref="Models.Serving.ServingReplica"/>.</summary>
    public const string ServeRequests = "requests";

    /// <summary>What a device node offers: replica device actors (the whole model on each device), pipeline stages, or both.</summary>
    public IReadOnlyList<string> Serving => Serve ?? [ServeReplica, ServePipeline];
}
