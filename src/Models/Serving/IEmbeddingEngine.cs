namespace DistributedInference.Models.Serving;

/// <summary>
/// The seam between the serving front ends and what embeds: rows of token ids in, one vector per row out (pooled and
/// normalised as the model's sentence-transformers modules say).
/// </summary>
public interface IEmbeddingEngine
{
    /// <summary>Embeds each row.</summary>
    /// <returns>One float32 vector per row, in order.</returns>
    /// <exception cref="InvalidInputException">A row the model cannot run.</exception>
    /// <exception cref="EngineUnavailableException">No device serves the model now.</exception>
    Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<IReadOnlyList<long>> tokenIds, CancellationToken cancellation = default);
}
