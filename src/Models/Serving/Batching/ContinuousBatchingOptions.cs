namespace DistributedInference.Models.Serving.Batching;

/// <summary>How a <see cref="ContinuousBatchingEngine"/> sizes its paged cache and schedules.</summary>
/// <param name="BlockSize">Positions per KV cache block (vLLM's default 16).</param>
/// <param name="KvCacheBytes">Bytes of keys and values the pool holds (all layers); the blocks are this over a block's bytes.</param>
/// <param name="Scheduler">The iteration scheduler's limits; null: its defaults.</param>
/// <param name="WorkspaceBytes">Bytes of the contiguous per-step view the decode rows' past is gathered into: rows x their
/// longest past x a position's bytes. Decode rows beyond it (sorted by past length) run in further passes of the same step.</param>
/// <param name="BeforeIteration">Called on the engine's thread before each iteration (its number) admits requests: a test
/// paces the engine with it (a virtual clock); null in production.</param>
/// <param name="Budget">Where set, <see cref="DeviceEngines"/> sizes each device's cache with it once the weights are loaded
/// (replacing <paramref name="KvCacheBytes"/>); null: <paramref name="KvCacheBytes"/> as given.</param>
public sealed record ContinuousBatchingOptions(int BlockSize = 16, long KvCacheBytes = 1L << 30, IterationSchedulerOptions? Scheduler = null, long WorkspaceBytes = 256L << 20, Action<long>? BeforeIteration = null, KvCacheBudget? Budget = null)
{
    /// <summary>Blocks of <paramref name="bytesPerPosition"/>-byte positions that fit in <see cref="KvCacheBytes"/>.</summary>
    /// <exception cref="InvalidInputException">A block size below 1, or a cache too small for one block.</exception>
    public int Blocks(long bytesPerPosition)
    {
        if (BlockSize < 1)
        {
            throw new InvalidInputException($"the KV cache block size must be at least 1, got {BlockSize}");
        }

        var blocks = KvCacheBytes / (bytesPerPosition * BlockSize);
        if (blocks < 1)
        {
            throw new InvalidInputException($"a KV cache of {KvCacheBytes} bytes holds no block of {BlockSize} positions ({bytesPerPosition * BlockSize} bytes each)");
        }

        return (int)Math.Min(blocks, int.MaxValue / BlockSize);
    }
}
