using DistributedInference.Models.Llama;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Partitioning;

/// <summary>
/// What each layer of a staged model needs for one pipeline run, the input of <see cref="MemoryPlanner"/>: weights in the
/// run's dtype; for generation, the key/value caches of the rows in flight only (at most <c>max_batch_size</c>, whatever
/// the number of rows: finished micro-batches make room for the next) over prompt + new tokens, and the activations of
/// the largest forward, a micro-batch's prefill of its prompt (a decode step runs one token a row); for one forward
/// (logits, classify, embed), the activations of a micro-batch over its tokens. Llama-family models describe their
/// cache and activations; the others are planned by their weights alone.
/// </summary>
public static class RunMemory
{
    /// <param name="staged">The staged model.</param>
    /// <param name="dtype">The run's dtype.</param>
    /// <param name="rows">Rows of the whole job.</param>
    /// <param name="maxBatchSize">Rows in flight at once (<c>--max-batch-size</c>).</param>
    /// <param name="numChunks">Micro-batches those rows are cut into.</param>
    /// <param name="promptLength">Positions of the input rows (padded).</param>
    /// <param name="maxNewTokens">Tokens generated per row; null when the run does not generate.</param>
    /// <returns>One entry per layer of <paramref name="staged"/>.</returns>
    public static IReadOnlyList<LayerMemory> Estimate(IStagedModel staged, ScalarType dtype, int rows, int maxBatchSize, int numChunks, long promptLength, int? maxNewTokens)
    {
        var inFlight = Math.Max(1, Math.Min(maxBatchSize, rows));
        var microBatch = (inFlight + Math.Max(1, numChunks) - 1) / Math.Max(1, numChunks);
        if (staged is LlamaStagedModel llama)
        {
            var generate = maxNewTokens is not null;
            return llama.Memory(dtype, inFlight, microBatch, promptLength + (maxNewTokens ?? 0), generate, forwardPositions: promptLength);
        }

        using var probe = empty([0], dtype);
        return staged.Layers.Select(l => new LayerMemory(l.ParameterCount * probe.ElementSize, 0, 0)).ToList();
    }
}
