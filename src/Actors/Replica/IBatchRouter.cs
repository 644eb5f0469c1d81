namespace DistributedInference.Actors.Replica;

/// <summary>
/// Where a batch goes when it must move (it is retried after a failure or a timeout, or its device stopped): a routing
/// policy of <see cref="BatchScheduler{TDevice}"/>, small and swappable (Ray Serve's request routers are the model).
/// Failure mode to keep in mind: a policy that ignores load piles retries onto one device.
/// </summary>
public interface IBatchRouter<TDevice>
    where TDevice : notnull
{
    /// <summary>The device among <paramref name="candidates"/> (never empty) whose queue takes the batch.</summary>
    /// <param name="load">Batches a device has queued and in flight.</param>
    TDevice Choose(IReadOnlyList<TDevice> candidates, Func<TDevice, int> load);
}

/// <summary>The device with the fewest batches queued and in flight; the first such one on a tie.</summary>
public sealed class LeastLoadedRouter<TDevice> : IBatchRouter<TDevice>
    where TDevice : notnull
{
    public static readonly LeastLoadedRouter<TDevice> Instance = new();

    public TDevice Choose(IReadOnlyList<TDevice> candidates, Func<TDevice, int> load) => candidates.MinBy(load)!;
}
