namespace DistributedInference.Actors.Replica;

/// <summary>
/// How a device actor recovers when a forward pass says its device state is bad
/// (<see cref="DistributedInference.Models.Runtime.DeviceStateException.IsDeviceStateBad"/>): the failed batch goes
/// back to its job (which sends it to another device), the model is disposed and built again after a backoff that
/// doubles from <see cref="MinBackoff"/> up to <see cref="MaxBackoff"/>; after <see cref="MaxReloads"/> reloads in a
/// row without a good batch in between, or a reload that fails, the device actor stops (its jobs re-send its batches
/// elsewhere). Batches that arrive meanwhile wait for the reload.
/// </summary>
public sealed record DeviceRecovery
{
    public static readonly DeviceRecovery Default = new();

    /// <summary>The wait before the first reload.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait before a reload.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Reloads in a row (without a batch that succeeded in between) before the device gives up and stops.</summary>
    public int MaxReloads { get; init; } = 5;

    /// <summary>The wait before the <paramref name="reload"/>-th reload in a row (counting from 1).</summary>
    public TimeSpan Backoff(int reload)
    {
        var factor = Math.Pow(2, Math.Clamp(reload - 1, 0, 30));
        var wait = TimeSpan.FromTicks((long)Math.Min(MinBackoff.Ticks * factor, MaxBackoff.Ticks));
        return wait < MinBackoff ? MinBackoff : wait;
    }
}
