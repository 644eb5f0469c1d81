using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// Continuous batching of a model cut into pipeline stages, with micro-batches of sequences (vLLM V0's pipeline
/// parallelism: one scheduler per "virtual engine", one per micro-batch in flight): M
/// <see cref="ContinuousBatchingEngine"/>s, each with its own <see cref="IterationScheduler"/> over its own share of the
/// stages' KV cache (a <see cref="PipelineModelExecutor"/> pool of <c>KvCacheBytes / M</c> bytes on the stages), behind
/// one <see cref="EngineRouter"/> (prefix affinity keeps a shared prompt on the engine that cached it). Each engine has
/// one step in flight, so with M at least the number of stages every stage has work: the stage actors' mailboxes
/// pipeline the engines' steps. Owns the engines (not the pipeline): disposing stops them and frees their pools.
/// </summary>
public sealed class PipelineEngines : IDisposable
{
    private PipelineEngines(IReadOnlyList<ContinuousBatchingEngine> engines, int blockSize, string cacheSizing)
    {
        CacheSizing = cacheSizing;
        Engines = engines;
        Router = new EngineRouter(engines);
        MaxPositions = engines.Min(e => e.Load.TotalBlocks) * blockSize;
    }

    /// <summary>The engines, one per micro-batch in flight.</summary>
    public IReadOnlyList<ContinuousBatchingEngine> Engines { get; }

    /// <summary>How the stages' cache was sized (<see cref="KvCacheBudget.Resolve"/>'s account; "as given" without a budget).</summary>
    public string CacheSizing { get; }

    /// <summary>Spreads requests over the engines.</summary>
    public EngineRouter Router { get; }

    /// <summary>Positions (prompt and output) one sequence may use at most: one engine's share of the cache, or less.</summary>
    public int MaxPositions { get; }

    /// <summary>Starts the engines over <paramref name="pipeline"/>.</summary>
    /// <param name="pipeline">Stages of a staged model whose layers can generate; not owned.</param>
    /// <param name="decoder">The decoder the stages hold.</param>
    /// <param name="options">The whole cache (<see cref="ContinuousBatchingOptions.KvCacheBytes"/>, shared out among the
    /// engines, each never more than its sequences at full context use) and each engine's scheduler limits.</param>
    /// <param name="numChunks">Engines (micro-batches in flight); null: one per stage.</param>
    /// <param name="cacheDevice">The device whose free memory bounds the stages' cache when
    /// <see cref="ContinuousBatchingOptions.Budget"/> is set: the CPU when every stage is on it, else another stage's
    /// device (whose free memory <see cref="DeviceMemory.FreeBytes"/> may not know); null: the CPU.</param>
    /// <exception cref="InvalidInputException">Impossible options, or a budget the device cannot hold.</exception>
    public static PipelineEngines Start(IPipeline pipeline, PipelineDecoder decoder, ContinuousBatchingOptions options, int? numChunks = null, DeviceName? cacheDevice = null)
    {
        var count = numChunks ?? pipeline.Stages.Count;
        if (count < 1)
        {
            throw new InvalidInputException($"--num-chunks must be at least 1, got {count}");
        }

        // The stages' caches together: each engine never uses more than its sequences at full context.
        var sequences = (options.Scheduler ?? new IterationSchedulerOptions()).MaxSequences;
        var useful = (long)sequences * decoder.MaxPositions * decoder.BytesPerPosition;
        var sizing = "as given";
        if (options.Budget is { } budget)
        {
            var device = cacheDevice ?? DeviceName.Cpu;
            var (bytes, how) = budget.Resolve(device, 1, 0, options.WorkspaceBytes, DeviceMemory.FreeBytes(device), useful * count);
            (options, sizing) = (options with { KvCacheBytes = bytes }, how);
        }

        if (options.BlockSize >= 1 && options.KvCacheBytes / count < decoder.BytesPerPosition * options.BlockSize)
        {
            throw new InvalidInputException($"a KV cache of {options.KvCacheBytes} bytes shared by {count} engines (one per micro-batch: --num-chunks) leaves each {options.KvCacheBytes / count} bytes, less than one block of {options.BlockSize} positions ({decoder.BytesPerPosition * options.BlockSize} bytes): give the cache more memory or run fewer engines");
        }

        var share = options with { KvCacheBytes = Math.Min(options.KvCacheBytes / count, useful) };
        var call = Guid.NewGuid().ToString("N")[..12];
        var engines = new List<ContinuousBatchingEngine>();
        try
        {
            for (var m = 0; m < count; m++)
            {
                engines.Add(new ContinuousBatchingEngine(new PipelineModelExecutor(pipeline, decoder, $"{call}-engine-{m}"), share));
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

        return new PipelineEngines(engines, options.BlockSize, sizing);
    }

    public void Dispose() => Router.Dispose();
}
