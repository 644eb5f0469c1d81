using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// The attention mask <c>generate</c> works with when the caller gives none, transformers' rule
/// (<c>GenerationMixin._prepare_attention_mask_for_generation</c>, generation/utils.py): when the model declares a
/// <c>pad_token_id</c> that is none of its end-of-sequence ids and the ids hold it, every position holding it is
/// padding; otherwise every position is a token. A pad id that is also an end-of-sequence id (Llama 3 padded with
/// <c>&lt;|end_of_text|&gt;</c>, GPT-2 padded with its end-of-text) cannot be told from a real end of text, so then
/// nothing is inferred and the caller must give the mask. The rule reads each row alone, so a row gets the same mask
/// in any batch.
/// </summary>
public static class GenerationMask
{
    /// <param name="inputIds">[B, T] int64 (or int32) token ids.</param>
    /// <param name="padTokenId">pad_token_id as the model declares it (generation_config.json's, else config.json's); null when none.</param>
    /// <param name="endOfSequenceIds">The model's end-of-sequence ids.</param>
    /// <returns>[B, T] int64, 1 = token, 0 = padding, on the ids' device, in the caller's dispose scope; null when the
    /// rule infers no padding (every position is a token).</returns>
    public static Tensor? Infer(Tensor inputIds, long? padTokenId, IReadOnlyList<long> endOfSequenceIds)
    {
        if (padTokenId is not { } pad || endOfSequenceIds.Contains(pad) || inputIds.dim() != 2)
        {
            return null;
        }

        using var scope = NewDisposeScope();
        var isPad = inputIds.eq(pad);
        return isPad.any().ToBoolean() ? isPad.logical_not().to(ScalarType.Int64).MoveToOuterDisposeScope() : null;
    }
}
