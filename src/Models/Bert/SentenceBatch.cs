using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// Tokenized sentences as sentence-transformers feeds them to BERT, right-padded to the longest row. The batch owns
/// its tensors.
/// </summary>
/// <param name="InputIds">[B, T] int64 token ids, padded with the pad id.</param>
/// <param name="AttentionMask">[B, T] int64, 1 for tokens and 0 for padding.</param>
/// <param name="TokenTypeIds">[B, T] int64, all 0 (one segment).</param>
public sealed record SentenceBatch(Tensor InputIds, Tensor AttentionMask, Tensor TokenTypeIds) : IDisposable
{
    /// <summary>Disposes the three tensors.</summary>
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        TokenTypeIds.Dispose();
    }
}
