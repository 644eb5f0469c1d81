using DistributedInference.Models.Generation;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Serving;

/// <summary>One sequence for <see cref="ServingDecoder"/>: its prompt, sampling, stop ids and its index (which seeds sampling).</summary>
public sealed record DecoderRow(IReadOnlyList<long> PromptTokenIds, SamplingParameters Sampling, IReadOnlyList<long> StopTokenIds, long SequenceIndex = 0);

/// <summary>What <see cref="ServingDecoder"/> generated for a row: its tokens (a stop token last, when it stopped on one) and why it ended.</summary>
public sealed record DecodedRow(IReadOnlyList<GeneratedToken> Tokens, FinishReason Finish);

/// <summary>
/// The decoding loop of served requests: <see cref="GenerationLoop"/>'s batch mechanics (left padding, positions
/// cumsum(mask) - 1, one preallocated key/value cache, the whole prompt then one token per step, float32 logits) with
/// each row's own sampling parameters, token budget and stop ids, repetition penalty, log-probabilities, a callback per
/// generated token and a per-row cancel check. A greedy row gets exactly the ids <see cref="GenerationLoop"/> gives it;
/// a sampled row draws from a <see cref="RowSampler"/> of its seed and index, as <c>di infer --do-sample</c> does.
/// </summary>
public static class ServingDecoder
{
    /// <param name="model">The decoder, on its device.</param>
    /// <param name="rows">At least one row.</param>
    /// <param name="onToken">Called with (row, token) as each token is chosen, on the calling thread.</param>
    /// <param name="isCancelled">Asked for each running row at each step; true ends the row where it is (finish reason length).</param>
    /// <returns>One result per row, in order.</returns>
    /// <exception cref="InvalidInputException">Impossible sampling, an empty prompt, ids the model cannot run, a prompt and budget longer than its positions.</exception>
    /// <summary>
    /// A sequence's sampling seed, by <see cref="RowSeeds"/>' rule: the request's seed mixed with a hash of the prompt's ids
    /// (what <c>di infer --do-sample --seed S</c> draws for that prompt), and for choice i &gt; 0 of one request that mixed
    /// with i, so the n choices differ and each is the same alone or batched.
    /// </summary>
    public static long SequenceSeed(DecoderRow row)
    {
        var seed = Seeds.Mix(unchecked((ulong)row.Sampling.Seed), Seeds.Hash(row.PromptTokenIds));
        return unchecked((long)(row.SequenceIndex == 0 ? seed : Seeds.Mix(seed, (ulong)row.SequenceIndex)));
    }

    public static IReadOnlyList<DecodedRow> Decode(
        ICausalLanguageModel model,
        IReadOnlyList<DecoderRow> rows,
        Action<int, GeneratedToken>? onToken = null,
        Func<int, bool>? isCancelled = null)
    {
        if (rows.Count == 0)
        {
            throw new InvalidInputException("no rows to decode");
        }

        foreach (var row in rows)
        {
            row.Sampling.Validate();
        }

        var budget = rows.Max(r => r.Sampling.MaxTokens);
        var batch = TokenBatch.Pad(rows.Select(r => r.PromptTokenIds).ToList(), model.PadTokenId, padLeft: true);
        using var batchIds = batch.InputIds;
        using var batchMask = batch.AttentionMask;
        model.CheckInput(batchIds, budget);
        var samplers = rows.Select(r => r.Sampling.IsGreedy ? null : new RowSampler([SequenceSeed(r)])).ToArray();
        try
        {
            using var scope = NewDisposeScope();
            using var inference = inference_mode();
            return Run(model, rows, batchIds, batchMask, budget, samplers, onToken, isCancelled);
        }
        finally
        {
            foreach (var sampler in samplers)
            {
                sampler?.Dispose();
            }
        }
    }

    private static DecodedRow[] Run(
        ICausalLanguageModel model,
        IReadOnlyList<DecoderRow> rows,
        Tensor inputIds,
        Tensor? attentionMask,
        int budget,
        RowSampler?[] samplers,
        Action<int, GeneratedToken>? onToken,
        Func<int, bool>? isCancelled)
    {
        var (count, promptLength) = (inputIds.shape[0], inputIds.shape[1]);
        var device = model is nn.Module module ? module.parameters().First().device : CPU;
        var ids = inputIds.to(device);
        var mask = attentionMask?.to(device);
        var total = promptLength + budget;
        Tensor? fullMask = null;
        if (mask is not null)
        {
            fullMask = ones([count, total], ScalarType.Int64, device);
            fullMask.narrow(1, 0, promptLength).copy_(mask);
        }

        var positions = mask is null ? arange(promptLength, ScalarType.Int64, device).unsqueeze(0) : LeftPadding.Positions(mask);
        using var cache = model.CreateCache(count, total, device);
        var produced = rows.Select(_ => new List<GeneratedToken>()).ToArray();
        var finish = new FinishReason?[rows.Count];
        var seen = rows.Select(r => new HashSet<long>(r.PromptTokenIds)).ToArray();
        var next = ids;
        var length = promptLength;
        var pad = model.PadTokenId;
        for (var step = 0; step < budget && finish.Any(f => f is null); step++)
        {
            using var stepScope = NewDisposeScope();
            var logits = model.NextTokenLogits(next, positions, fullMask?.narrow(1, 0, length), cache).to(ScalarType.Float32);
            var greedy = logits.argmax(-1).cpu().data<long>().ToArray();
            var chosen = new long[rows.Count];
            for (var r = 0; r < rows.Count; r++)
            {
                if (finish[r] is not null || isCancelled?.Invoke(r) == true)
                {
                    finish[r] ??= FinishReason.Length;
                    chosen[r] = pad;
                    continue;
                }

                var sampling = rows[r].Sampling;
                var token = sampling.IsGreedy && sampling.RepetitionPenalty == 1.0 ? greedy[r] : Choose(logits[r], sampling, seen[r], samplers[r]);
                var generated = sampling.Logprobs is { } k ? WithLogprobs(logits[r], token, k) : new GeneratedToken(token);
                produced[r].Add(generated);
                seen[r].Add(token);
                chosen[r] = token;
                onToken?.Invoke(r, generated);
                if (rows[r].StopTokenIds.Contains(token))
                {
                    finish[r] = FinishReason.Stop;
                }
                else if (produced[r].Count >= sampling.MaxTokens)
                {
                    finish[r] = FinishReason.Length;
                }
            }

            next = tensor(chosen, device: device).unsqueeze(1).MoveToOuterDisposeScope();
            positions = positions.narrow(1, positions.shape[1] - 1, 1).add(1).MoveToOuterDisposeScope();
            length++;
        }

        return rows.Select((_, r) => new DecodedRow(produced[r], finish[r] ?? FinishReason.Length)).ToArray();
    }

    // One row's token: penalised, warped and drawn (or the best, when greedy with a penalty). scores: [vocab] float32.
    internal static long Choose(Tensor scores, SamplingParameters sampling, HashSet<long> seen, RowSampler? sampler)
    {
        if (sampling.RepetitionPenalty != 1.0 && seen.Count > 0)
        {
            var index = tensor(seen.Where(id => id >= 0 && id < scores.shape[0]).ToArray(), device: scores.device);
            var picked = scores.gather(0, index);
            var penalised = where(picked.lt(0), picked * sampling.RepetitionPenalty, picked / sampling.RepetitionPenalty);
            scores = scores.scatter(0, index, penalised);
        }

        if (sampler is null)
        {
            return scores.argmax(-1).ToInt64();
        }

        var options = new GenerationOptions(DoSample: true, Temperature: sampling.Temperature, TopK: sampling.TopK, TopP: sampling.TopP);
        return sampler.Sample(LogitsWarpers.Apply(scores.unsqueeze(0), options)).cpu().data<long>()[0];
    }

    internal static GeneratedToken WithLogprobs(Tensor logits, long token, int top)
    {
        var logprobs = logits.log_softmax(-1);
        var chosen = logprobs[token].ToDouble();
        if (top == 0)
        {
            return new GeneratedToken(token, chosen, []);
        }

        var (values, indices) = logprobs.topk(Math.Min(top, (int)logprobs.shape[0]));
        var v = values.cpu().data<float>().ToArray();
        var i = indices.cpu().data<long>().ToArray();
        return new GeneratedToken(token, chosen, v.Select((value, n) => new TokenLogprob(i[n], value)).ToList());
    }
}
