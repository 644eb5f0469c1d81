using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// How much memory a device gives the KV cache of its continuous-batching engines, resolved once the weights are loaded:
/// a fixed size (<see cref="Bytes"/>: <c>--kv-cache-memory</c>, as vLLM's <c>kv_cache_memory_bytes</c>); what a memory
/// budget leaves after the weights and the engines' workspaces (<see cref="MaxMemory"/>: <c>--max-memory</c>, as
/// Accelerate's <c>max_memory</c> and, for the whole device, vLLM's <c>gpu_memory_utilization</c>); or, with neither, at
/// most <see cref="AutoLimit"/> (vLLM's CPU default KV space) and at most half of the memory free after the weights.
/// </summary>
/// <param name="Bytes">Bytes of KV cache per engine; null: not fixed.</param>
/// <param name="MaxMemory">Per-device budgets for weights, workspaces and KV cache together; null: none.</param>
public sealed record KvCacheBudget(long? Bytes = null, MaxMemory? MaxMemory = null)
{
    /// <summary>The most an automatically sized cache takes on one device: 4 GiB.</summary>
    public const long AutoLimit = 4L << 30;

    /// <summary>Where free memory is unknown (a CUDA device through TorchSharp), an automatic cache takes this per device: 1 GiB.</summary>
    public const long UnknownFreeDefault = 1L << 30;

    // Below this an automatic cache is refused: the free memory read is then more likely wrong than the cache useful.
    private const long MinimumAuto = 1L << 20;

    /// <summary>Whether a size or a budget was given (otherwise the cache is sized automatically).</summary>
    public bool IsSet => Bytes is not null || MaxMemory is not null;

    /// <summary>Neither a size nor a budget: sized from the memory free after the weights.</summary>
    public static KvCacheBudget Auto { get; } = new();

    /// <summary>The bytes of KV cache each of <paramref name="engines"/> engines on <paramref name="device"/> gets, and how they were found.</summary>
    /// <param name="device">The device.</param>
    /// <param name="engines">Engines on the device (they share its weights and its budget).</param>
    /// <param name="weightBytes">Bytes of the weights loaded on the device.</param>
    /// <param name="workspaceBytes">Bytes of one engine's per-step workspace (<see cref="ContinuousBatchingOptions.WorkspaceBytes"/>).</param>
    /// <param name="freeBytes">Bytes free on the device with the weights loaded; -1 where unknown.</param>
    /// <param name="limitBytes">The most one engine can use (its sequences at full context): a larger cache is cut to this
    /// before it is checked against the free memory.</param>
    /// <exception cref="InvalidInputException">Both a size and a budget; no budget for the device; a budget the weights and
    /// workspaces leave nothing of; a cache larger than the free memory (one line each, with the figures).</exception>
    public (long PerEngine, string How) Resolve(DeviceName device, int engines, long weightBytes, long workspaceBytes, long freeBytes, long limitBytes = long.MaxValue)
    {
        var (perEngine, how) = Sized(device, engines, weightBytes, workspaceBytes, freeBytes);
        if (limitBytes < perEngine)
        {
            (perEngine, how) = (limitBytes, $"{how}, capped at {Size(limitBytes)}: all its sequences at full context");
        }

        if (IsSet)
        {
            if (freeBytes >= 0 && (perEngine + workspaceBytes) * engines > freeBytes)
            {
                throw new InvalidInputException($"{how} gives {device}'s KV cache {Size(perEngine * engines)}, which with {Size(workspaceBytes * engines)} of workspace is more than the {Size(freeBytes)} free there after the weights: give less");
            }
        }
        else if (freeBytes < 0)
        {
            how += $" (free memory on {device} is unknown: give --kv-cache-memory or --max-memory)";
        }

        return (perEngine, how);
    }

    private (long PerEngine, string How) Sized(DeviceName device, int engines, long weightBytes, long workspaceBytes, long freeBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(engines, 1);
        Validated();
        var share = engines == 1 ? string.Empty : $", shared by {engines} engines";
        if (Bytes is { } fixedBytes)
        {
            return (fixedBytes, $"--kv-cache-memory {Size(fixedBytes)}");
        }

        if (MaxMemory is not null)
        {
            var budget = MaxMemory.Of(device);
            var left = budget - weightBytes - (workspaceBytes * engines);
            if (left <= 0)
            {
                throw new InvalidInputException($"--max-memory {device}={Size(budget)} leaves no KV cache: the weights take {Size(weightBytes)} and {engines} engine workspace(s) {Size(workspaceBytes * engines)}");
            }

            return (left / engines, $"--max-memory {device}={Size(budget)} less {Size(weightBytes)} of weights and {Size(workspaceBytes * engines)} of workspace{share}");
        }

        if (freeBytes < 0)
        {
            return (UnknownFreeDefault / engines, $"auto: {Size(UnknownFreeDefault)}{share}");
        }

        var auto = Math.Min(AutoLimit, freeBytes / 2);
        if (auto / engines < MinimumAuto)
        {
            throw new InvalidInputException($"{device} has {Size(freeBytes)} free after the weights: too little for an automatic KV cache; give --kv-cache-memory or --max-memory");
        }

        return (auto / engines, $"auto: the smaller of {Size(AutoLimit)} and half the {Size(freeBytes)} free on {device} after the weights{share}");
    }

    /// <summary>This budget, checked: not both a size and a budget, and a size of at least one byte.</summary>
    /// <exception cref="InvalidInputException">Either fault (one line).</exception>
    public KvCacheBudget Validated()
    {
        if (Bytes is not null && MaxMemory is not null)
        {
            throw new InvalidInputException("--kv-cache-memory and --max-memory both size the KV cache: give one");
        }

        return Bytes is <= 0 ? throw new InvalidInputException($"--kv-cache-memory must be positive, got {Bytes} bytes") : this;
    }

    /// <summary>Bytes as MiB below 1 GiB (whole, else with one decimal), else as GiB with one decimal.</summary>
    public static string Size(long bytes)
    {
        if (bytes >= (1L << 30))
        {
            return Partitioning.MaxMemory.GiB(bytes);
        }

        var mebibytes = bytes / (double)(1L << 20);
        return mebibytes.ToString(mebibytes == Math.Floor(mebibytes) ? "F0" : "F1", System.Globalization.CultureInfo.InvariantCulture) + " MiB";
    }
}
