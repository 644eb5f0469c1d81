using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// Greedy decoding with a key/value cache, as <c>generate(do_sample=False)</c> does: rows may be left-padded
/// (attention mask 0 on the left); a row that emits the end-of-sequence token is filled with the pad token
/// afterwards; decoding stops when every row has finished or <c>maxNewTokens</c> are produced.
/// </summary>
public static class GreedySearch
{
    /// <returns>[B, T + n] token ids: the prompt followed by n &lt;= maxNewTokens generated ones.</returns>
    public static Tensor Generate(Gpt2LMHeadModel model, Tensor inputIds, Tensor? attentionMask, int maxNewTokens)
    {
        var config = model.Config;
        Gpt2Model.CheckInput(config, inputIds, maxNewTokens);
        if (maxNewTokens < 0)
        {
            throw new InvalidInputException($"max_new_tokens must be >= 0, got {maxNewTokens}");
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = inputIds.device;
        var (batch, steps) = (inputIds.shape[0], inputIds.shape[1]);
        var eos = EndOfText(config);
        var pad = PadToken(config);

        using var cache = new KeyValueCache(
            config.LayerCount, batch, config.HeadCount, steps + maxNewTokens, config.HeadSize, device, model.HeadWeight.dtype);
        var mask = attentionMask?.to(ScalarType.Int64);
        var positions = mask is null ? null : PositionsFromMask(mask);
        var tokens = inputIds.to(ScalarType.Int64);
        var next = tokens;
        var unfinished = ones(batch, ScalarType.Int64, device);

        for (var step = 0; step < maxNewTokens; step++)
        {
            using var stepScope = NewDisposeScope();
            var hidden = model.Transformer.Forward(next, mask, positions, cache);
            var logits = model.Head(hidden.select(1, -1));
            var chosen = logits.argmax(-1);
            if (eos is not null)
            {
                chosen = (chosen * unfinished) + (pad * (1 - unfinished));
                unfinished.mul_(chosen.ne(eos.Value).to(ScalarType.Int64));
            }

            next = chosen.unsqueeze(1).MoveToOuterDisposeScope();
            tokens = cat([tokens, next], 1).MoveToOuterDisposeScope();
            if (mask is not null)
            {
                mask = cat([mask, ones(batch, 1, ScalarType.Int64, device)], 1).MoveToOuterDisposeScope();
                positions = positions!.select(1, -1).unsqueeze(1).add(1).MoveToOuterDisposeScope();
            }

            if (eos is not null && unfinished.max().ToInt64() == 0)
            {
                break;
            }
        }

        return tokens.MoveToOuterDisposeScope();
    }

    /// <summary>The tokens generated after a prompt of <paramref name="promptWidth"/> positions, up to and including the end-of-text token.</summary>
    public static long[] Continuation(Gpt2Config config, Tensor outputRow, long promptWidth)
    {
        var tokens = outputRow.data<long>().Skip((int)promptWidth).ToList();
        var end = EndOfText(config) is { } eos ? tokens.IndexOf(eos) : -1;
        return (end >= 0 ? tokens.Take(end + 1) : tokens).ToArray();
    }

    /// <summary>The id that pads rows: the config's pad token, else its end-of-text token, else 0.</summary>
    public static long PadToken(Gpt2Config config) => config.PadTokenId ?? EndOfText(config) ?? 0;

    /// <summary>The end-of-text token, when the model's vocabulary has it.</summary>
    public static long? EndOfText(Gpt2Config config) => config.EosTokenId is { } eos && eos < config.VocabSize ? eos : null;

    /// <summary>Positions that skip left padding: the first real token of every row sits at position 0.</summary>
    private static Tensor PositionsFromMask(Tensor mask) =>
        mask.cumsum(-1).sub(1).masked_fill(mask.eq(0), 1);
}
