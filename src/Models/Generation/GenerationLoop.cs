using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// The one decoding loop of every causal language model here (transformers' <c>generate</c> for decoder-only
/// models): greedy, or sampling with temperature, top-k, top-p from per-row generators; a preallocated key/value
/// cache; left padding with positions cumsum(mask) - 1 and padded keys masked (right-padded rows are moved to the
/// left first); a row that emits any end-of-sequence id gets the pad id afterwards; stops when every row has ended
/// or after max_new_tokens. A row whose next-token logits are not finite fails the call
/// (<see cref="NonFiniteLogitsException"/>), greedy or sampled. Without a mask, padding is inferred from the model's declared pad id as transformers does
/// (<see cref="GenerationMask"/>).
/// </summary>
public static class GenerationLoop
{
    /// <param name="model">The model, on the device of <paramref name="inputIds"/>.</param>
    /// <param name="inputIds">[B, T] int64 prompts, on the model's device.</param>
    /// <param name="attentionMask">[B, T], 1 = real token, 0 = padding (left or right); null: positions holding the
    /// model's declared pad id are padding when that id is no end-of-sequence id (<see cref="GenerationMask"/>), else none.</param>
    /// <param name="options">Greedy or sampling, max_new_tokens, seed.</param>
    /// <param name="rowSeeds">Each row's sampling seed ([B]); null: <see cref="RowSeeds.Derive"/> from options.Seed and each row's real tokens.</param>
    /// <param name="onStepLogits">Called at each step with the step's index and the [B, vocab] float32 next-token
    /// logits before any warper (what greedy takes the argmax of); the tensor is the loop's: clone it to keep it.</param>
    /// <returns>[B, T + n] int64: the prompts, left-padded (right-padded rows moved), then n &lt;= max_new_tokens
    /// new ids (pad after a row's end-of-sequence id); the caller owns it.</returns>
    /// <exception cref="InvalidInputException">Impossible options, ids the model cannot run, a mask or row seeds of the wrong shape.</exception>
    /// <exception cref="NonFiniteLogitsException">A generating row's next-token logits hold NaN or Inf.</exception>
    public static Tensor Generate(
        ICausalLanguageModel model,
        Tensor inputIds,
        Tensor? attentionMask,
        GenerationOptions options,
        IReadOnlyList<long>? rowSeeds = null,
        Action<int, Tensor>? onStepLogits = null)
    {
        options.Validate();
        model.CheckInput(inputIds, options.MaxNewTokens);
        var (batch, promptLength) = (inputIds.shape[0], inputIds.shape[1]);
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputIds.shape))
        {
            throw new InvalidInputException(
                $"attention_mask is [{string.Join(", ", attentionMask.shape)}] but input_ids is [{string.Join(", ", inputIds.shape)}]");
        }

        if (rowSeeds is not null && rowSeeds.Count != batch)
        {
            throw new InvalidInputException($"row seeds have {rowSeeds.Count} entries for {batch} rows");
        }

        using var scope = NewDisposeScope();
        Tensor generated;
        using (var inference = inference_mode())
        {
            generated = Decode(model, inputIds, attentionMask, options, rowSeeds, onStepLogits);
        }

        // Outside inference mode, so the caller gets an ordinary tensor (inference tensors refuse in-place updates).
        return generated.clone().MoveToOuterDisposeScope();
    }

    // The loop itself, under inference mode (no autograd bookkeeping per op); the result is an inference tensor.
    private static Tensor Decode(
        ICausalLanguageModel model,
        Tensor inputIds,
        Tensor? attentionMask,
        GenerationOptions options,
        IReadOnlyList<long>? rowSeeds,
        Action<int, Tensor>? onStepLogits)
    {
        var (batch, promptLength) = (inputIds.shape[0], inputIds.shape[1]);
        var device = inputIds.device;
        var ids = inputIds.to(ScalarType.Int64);
        var mask = attentionMask?.to(ScalarType.Int64).to(device)
            ?? GenerationMask.Infer(ids, model.DeclaredPadTokenId, model.EndOfSequenceIds);
        if (mask is not null && !mask.eq(0).any().ToBoolean())
        {
            mask = null;
        }

        if (mask is not null)
        {
            (ids, mask) = LeftPadding.Apply(ids, mask);
        }

        var pad = model.PadTokenId;
        var total = promptLength + options.MaxNewTokens;
        var tokens = full([batch, total], pad, ScalarType.Int64, device);
        tokens.narrow(1, 0, promptLength).copy_(ids);
        Tensor? fullMask = null;
        if (mask is not null)
        {
            fullMask = ones([batch, total], ScalarType.Int64, device);
            fullMask.narrow(1, 0, promptLength).copy_(mask);
        }

        var positions = mask is null
            ? arange(promptLength, ScalarType.Int64, device).unsqueeze(0)
            : LeftPadding.Positions(mask);
        var endIds = model.EndOfSequenceIds.Where(id => id >= 0 && id < model.VocabSize).ToArray();
        var ends = endIds.Length > 0 ? tensor(endIds, device: device) : null;
        var unfinished = ones([batch], ScalarType.Bool, device);
        using var sampler = options.DoSample
            ? new RowSampler(rowSeeds ?? RowSeeds.Derive(options.Seed, ids, mask))
            : null;
        using var cache = model.CreateCache(batch, Math.Max(total, 1), device);

        var next = ids;
        var length = promptLength;
        for (var step = 0; step < options.MaxNewTokens; step++)
        {
            using var stepScope = NewDisposeScope();
            var logits = model.NextTokenLogits(next, positions, fullMask?.narrow(1, 0, length), cache).to(ScalarType.Float32);
            onStepLogits?.Invoke(step, logits);
            NonFiniteLogitsException.ThrowIfAny(logits, unfinished, step, model.Dtype);
            var chosen = sampler is null ? logits.argmax(-1) : sampler.Sample(LogitsWarpers.Apply(logits, options));
            if (ends is not null)
            {
                chosen = chosen.where(unfinished, pad);
                unfinished.logical_and_(chosen.unsqueeze(1).eq(ends.unsqueeze(0)).any(1).logical_not());
            }

            tokens.select(1, length).copy_(chosen);
            next = chosen.unsqueeze(1).MoveToOuterDisposeScope();
            positions = positions.narrow(1, positions.shape[1] - 1, 1).add(1).MoveToOuterDisposeScope();
            length++;
            if (ends is not null && !unfinished.any().ToBoolean())
            {
                break;
            }
        }

        return tokens.narrow(1, 0, length);
    }
}
