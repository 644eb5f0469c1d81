using DistributedInference.Models.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// What continuous batching over a pipeline needs to know of the decoder its stages hold, without loading it here: the
/// vocabulary, the context, and the bytes of keys and values one position takes over all attention layers (all stages).
/// </summary>
/// <param name="VocabSize">Columns of the logits; ids must be below it.</param>
/// <param name="MaxPositions">Positions a sequence may have (config's <c>max_position_embeddings</c>).</param>
/// <param name="BytesPerPosition">Key and value bytes of one position over every attention layer.</param>
public sealed record PipelineDecoder(int VocabSize, int MaxPositions, long BytesPerPosition)
{
    /// <summary>A Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) whose stages run in <paramref name="dtype"/>.</summary>
    public static PipelineDecoder Of(LlamaConfig config, ScalarType dtype)
    {
        using var probe = empty(0, dtype);
        return new(config.VocabSize, config.MaxPositions, 2L * config.LayerCount * config.KeyValueHeadCount * config.HeadDim * probe.ElementSize);
    }
}
