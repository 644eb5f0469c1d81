using static TorchSharp.torch;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// What a <see cref="ContinuousBatchingEngine"/> needs of its model (vLLM's <c>Executor</c>,
/// vllm/v1/executor/abstract.py): the checks and sizes the engine plans with, a paged key/value cache of the blocks its
/// scheduler hands out, and one forward pass over it. The transport is the executor's: the model on this process's
/// device (<see cref="LocalModelExecutor"/>), or the stages of a pipeline. One engine thread calls it; not thread-safe.
/// </summary>
public interface IModelExecutor : IDisposable
{
    /// <summary>Where the model runs, in words (the engine's thread is named after it).</summary>
    string Name { get; }

    /// <summary>Columns of the logits.</summary>
    int VocabSize { get; }

    /// <summary>Bytes of keys and values one position takes over all attention layers: what sizes the pool.</summary>
    long BytesPerPosition { get; }

    /// <summary>Rejects a prompt the model cannot run with room for <paramref name="maxNewTokens"/> more positions.</summary>
    /// <exception cref="InvalidInputException">An id outside the vocabulary, or a sequence too long.</exception>
    void CheckInput(IReadOnlyList<long> promptTokenIds, long maxNewTokens);

    /// <summary>Allocates the cache behind the scheduler's blocks (vLLM's <c>initialize_from_config</c>); called once, before any pass.</summary>
    /// <param name="blocks">Blocks in the pool.</param>
    /// <param name="blockSize">Positions per block.</param>
    /// <exception cref="InvalidInputException">The cache cannot be allocated.</exception>
    void InitializeCache(int blocks, int blockSize);

    /// <summary>
    /// One forward pass of chunks of equal length (vLLM's <c>execute_model</c>): each chunk's tokens at its positions,
    /// over its past read through its block table; the new positions' keys and values are written to its blocks.
    /// </summary>
    /// <param name="chunks">At least one; each <see cref="ScheduledChunk.Count"/> the same, their blocks reserved.</param>
    /// <returns>[rows, vocab] float32 logits at each chunk's last position, one row per chunk in order; in the caller's dispose scope.</returns>
    /// <exception cref="KvCacheLostException">The cache's contents are gone (a pipeline stage was lost): nothing was computed,
    /// and every block must be computed again.</exception>
    Tensor ExecuteModel(IReadOnlyList<ScheduledChunk> chunks);
}
