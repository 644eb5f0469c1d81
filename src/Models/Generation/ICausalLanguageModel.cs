using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// A decoder-only language model with a key/value cache, as <see cref="GenerationLoop"/> drives it (GPT-2, Llama,
/// Mistral, Qwen2, Qwen3). Implementations run under the caller's dispose scope and <c>no_grad</c>.
/// </summary>
public interface ICausalLanguageModel
{
    /// <summary>Rows of the head: logits have this many columns.</summary>
    int VocabSize { get; }

    /// <summary>Ids that end a row's generation (any of them); empty = generate until max_new_tokens.</summary>
    IReadOnlyList<long> EndOfSequenceIds { get; }

    /// <summary>The id written after a row has ended.</summary>
    long PadTokenId { get; }

    /// <summary>
    /// <c>pad_token_id</c> as the checkpoint declares it (generation_config.json's, else config.json's); null when it
    /// declares none. Without an attention mask, generation treats this id as padding (<see cref="GenerationMask"/>).
    /// </summary>
    long? DeclaredPadTokenId { get; }

    /// <summary>The model's parameters' dtype (the cache's).</summary>
    ScalarType Dtype { get; }

    /// <summary>Rejects ids this model cannot run, with room for <paramref name="extraPositions"/> more positions.</summary>
    /// <param name="inputIds">[B, T] int64 (or int32) token ids.</param>
    /// <param name="extraPositions">Positions generation will add.</param>
    /// <exception cref="InvalidInputException">Wrong rank or dtype, an id outside the vocabulary, a sequence too long.</exception>
    void CheckInput(Tensor inputIds, long extraPositions = 0);

    /// <summary>An empty cache for <paramref name="batch"/> rows of up to <paramref name="capacity"/> positions; the caller disposes it.</summary>
    KeyValueCache CreateCache(long batch, long capacity, Device device);

    /// <summary>Runs new positions through the model, extending <paramref name="cache"/>.</summary>
    /// <param name="inputIds">[B, T] int64: the new tokens (the whole prompt first, then one token per step).</param>
    /// <param name="positionIds">[B, T] int64 positions of the new tokens.</param>
    /// <param name="attentionMask">[B, past + T] int64, 1 = real, 0 = padding; null when nothing is padded.</param>
    /// <param name="cache">Keys and values of the earlier positions.</param>
    /// <returns>[B, vocab] logits at each row's last new position, in the model's dtype, in the caller's dispose scope.</returns>
    Tensor NextTokenLogits(Tensor inputIds, Tensor positionIds, Tensor? attentionMask, KeyValueCache cache);
}
