using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Inference;

/// <summary>
/// A test seam: replaces the replica model that <c>di infer --mode replica</c> builds, for calls made in the current
/// async flow only (so tests running beside it are not affected), e.g. with one that throws on some rows to check
/// how failed rows are written. Not used by the command line itself.
/// </summary>
public static class FaultInjection
{
    private static readonly AsyncLocal<Func<ReplicaModelFactory, ReplicaModelFactory>?> Wrapper = new();

    /// <summary>Wraps every replica model factory of this async flow with <paramref name="wrap"/> until disposed.</summary>
    public static IDisposable Wrap(Func<ReplicaModelFactory, ReplicaModelFactory> wrap)
    {
        var before = Wrapper.Value;
        Wrapper.Value = wrap;
        return new Restore(before);
    }

    /// <summary>The factory to use: <paramref name="factory"/>, wrapped when a test asked for it.</summary>
    public static ReplicaModelFactory Apply(ReplicaModelFactory factory) => Wrapper.Value?.Invoke(factory) ?? factory;

    private sealed class Restore(Func<ReplicaModelFactory, ReplicaModelFactory>? before) : IDisposable
    {
        public void Dispose() => Wrapper.Value = before;
    }
}
