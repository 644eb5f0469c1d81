using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// GPT-2's greedy decoding, <c>generate(do_sample=False)</c>: a thin front of the shared <see cref="GenerationLoop"/>
/// (left or right padding, KV cache, end-of-text then pad), plus GPT-2's choice of end-of-text and pad ids.
/// </summary>
public static class GreedySearch
{
    /// <param name="model">The language model, on the ids' device.</param>
    /// <param name="inputIds">[B, T] int64 prompts.</param>
    /// <param name="attentionMask">[B, T], 1 = token, 0 = padding (right-padded rows are moved to the left); null when nothing is padded.</param>
    /// <param name="maxNewTokens">Tokens generated per row at most.</param>
    /// <returns>[B, T + n] token ids: the (left-padded) prompt followed by n &lt;= maxNewTokens generated ones; the caller owns it.</returns>
    /// <exception cref="InvalidInputException">Ids outside the vocabulary, too many positions, a negative maxNewTokens.</exception>
    public static Tensor Generate(Gpt2LMHeadModel model, Tensor inputIds, Tensor? attentionMask, int maxNewTokens)
    {
        Gpt2Model.CheckInput(model.Config, inputIds, maxNewTokens);
        return GenerationLoop.Generate(model, inputIds, attentionMask, new GenerationOptions(MaxNewTokens: maxNewTokens));
    }

    /// <summary>The tokens generated after a prompt of <paramref name="promptWidth"/> positions, up to and including the end-of-text token.</summary>
    public static long[] Continuation(Gpt2Config config, Tensor outputRow, long promptWidth) =>
        Generation.Continuation.Of(outputRow, promptWidth, EndOfText(config) is { } eos ? [eos] : []);

    /// <summary>The id that pads rows: the config's pad token, else its end-of-text token, else 0.</summary>
    public static long PadToken(Gpt2Config config) => config.PadTokenId ?? EndOfText(config) ?? 0;

    /// <summary>The end-of-text token, when the model's vocabulary has it.</summary>
    public static long? EndOfText(Gpt2Config config) => config.EosTokenId is { } eos && eos < config.VocabSize ? eos : null;
}
