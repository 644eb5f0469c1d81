using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Replica;

/// <summary>How a replica job is split: accelerate's <c>apply_padding</c>, and rows per forward pass.</summary>
public sealed record JobOptions(bool ApplyPadding = false, int MaxBatchSize = 8)
{
    /// <summary>How long one batch may take before it is re-sent to another device.</summary>
    public TimeSpan BatchTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Attempts per batch (a device that fails, stops or times out costs one) before the batch is split in two to isolate
    /// the rows at fault (<see cref="RowsFailed"/>); hocon <c>distributed-inference.max-attempts</c>.
    /// </summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>
    /// The model the job is for (<see cref="ModelIdentity.Of"/>: a folder by its weights, a built-in by its name and
    /// seed): the job runs only on devices whose <see cref="DeviceStatus.Spec"/> holds that model, and fails as an input
    /// error naming what the devices serve when none does. Null: any device.
    /// </summary>
    public ModelIdentity? Model { get; init; }

    /// <summary>Options with the configured max batch size, batch timeout and max attempts (hocon <c>distributed-inference</c>).</summary>
    public static JobOptions From(Kernel.Settings.DistributedInferenceSettings settings, bool applyPadding = false) =>
        new(applyPadding, settings.MaxBatchSize) { BatchTimeout = settings.BatchTimeout, MaxAttempts = settings.MaxAttempts };
}
