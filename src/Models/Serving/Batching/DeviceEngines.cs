using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// The continuous-batching engines of one process: one <see cref="ContinuousBatchingEngine"/> per device over the
/// process's <see cref="DeviceDecoders"/>, behind one <see cref="EngineRouter"/>. Each engine's KV cache is
/// <see cref="ContinuousBatchingOptions.KvCacheBytes"/>, or what <see cref="ContinuousBatchingOptions.Budget"/> gives it
/// once every device's weights are loaded, but never more than every running sequence at full context would use. Owns the
/// engines (not the decoders): disposing stops them.
/// </summary>
public sealed class DeviceEngines : IDisposable
{
    private readonly int _blockSize;

    private DeviceEngines(IReadOnlyList<ContinuousBatchingEngine> engines, IReadOnlyList<DeviceName> devices, int blockSize, IReadOnlyDictionary<DeviceName, string> sizing)
    {
        CacheSizing = sizing;
        _blockSize = blockSize;
        Engines = engines;
        Devices = devices;
        Router = new EngineRouter(engines);
        MaxPositions = engines.Min(e => e.Load.TotalBlocks) * blockSize;
    }

    /// <summary>The engines, one per device, in the order of <see cref="Devices"/>.</summary>
    public IReadOnlyList<ContinuousBatchingEngine> Engines { get; }

    /// <summary>The devices.</summary>
    public IReadOnlyList<DeviceName> Devices { get; }

    /// <summary>How each device's cache was sized (<see cref="KvCacheBudget.Resolve"/>'s account; "as given" without a budget).</summary>
    public IReadOnlyDictionary<DeviceName, string> CacheSizing { get; }

    /// <summary>The caches for a start line: <c>2048 KV blocks of 16 positions per engine (cpu: auto: ...)</c>.</summary>
    public string DescribeCache() =>
        $"{string.Join(", ", Engines.Select(e => e.Load.TotalBlocks).Distinct())} KV blocks of {_blockSize} positions per engine ({string.Join("; ", CacheSizing.Select(p => $"{p.Key}: {p.Value}"))})";

    /// <summary>Spreads requests over the engines.</summary>
    public EngineRouter Router { get; }

    /// <summary>Positions (prompt and output) one sequence may use at most: the smallest cache's (vLLM's <c>max_model_len</c>
    /// when the cache is smaller than the model's context).</summary>
    public int MaxPositions { get; }

    /// <summary>Starts an engine on each of <paramref name="devices"/>, loading the decoder there if it is not yet.</summary>
    /// <param name="contextLength">The model's context (positions): the cache stops at <c>MaxSequences x contextLength</c>.</param>
    /// <exception cref="InvalidInputException">Impossible options, a budget the device cannot hold
    /// (<see cref="KvCacheBudget.Resolve"/>), or a cache that cannot be allocated.</exception>
    public static DeviceEngines Start(DeviceDecoders decoders, IReadOnlyList<DeviceName> devices, ContinuousBatchingOptions options, int contextLength)
    {
        if (devices.Count == 0)
        {
            throw new InvalidInputException("continuous batching needs at least one device");
        }

        // Every device's weights first: free memory is read with all of them in place.
        foreach (var device in devices.Distinct())
        {
            decoders.Model(device);
        }

        // Each engine's cache: the budget's (or the size given), but never more than its sequences at full context use.
        var sequences = (options.Scheduler ?? new IterationSchedulerOptions()).MaxSequences;
        var sizes = new Dictionary<DeviceName, (long PerEngine, string How)>();
        foreach (var device in devices.Distinct())
        {
            var useful = (long)sequences * contextLength * PagedKvStore.BytesPerPosition(decoders.Model(device), device.ToTorch());
            sizes[device] = options.Budget is { } budget
                ? budget.Resolve(device, devices.Count(d => d == device), WeightBytes(decoders.On(device)), options.WorkspaceBytes, DeviceMemory.FreeBytes(device), useful)
                : (Math.Min(options.KvCacheBytes, useful), "as given");
        }

        var engines = new List<ContinuousBatchingEngine>();
        try
        {
            foreach (var device in devices)
            {
                engines.Add(new ContinuousBatchingEngine(decoders.Model(device), device.ToTorch(), options with { KvCacheBytes = sizes[device].PerEngine }));
            }
        }
        catch
        {
            foreach (var engine in engines)
            {
                engine.Dispose();
            }

            throw;
        }

        return new DeviceEngines(engines, devices, options.BlockSize, sizes.ToDictionary(p => p.Key, p => p.Value.How));
    }

    /// <summary>Bytes of <paramref name="module"/>'s parameters and buffers.</summary>
    public static long WeightBytes(TorchSharp.torch.nn.Module module) =>
        module.parameters().Sum(p => p.numel() * p.element_size()) + module.buffers().Sum(b => b.numel() * b.element_size());

    public void Dispose() => Router.Dispose();
}
