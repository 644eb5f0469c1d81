namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// The limits of an <see cref="IterationScheduler"/> (vLLM's <c>SchedulerConfig</c> names in brackets).
/// </summary>
/// <param name="MaxSequences">Sequences in the running set at most (<c>max_num_seqs</c>).</param>
/// <param name="MaxTokensPerStep">Tokens one iteration computes at most, decode and prefill together (<c>max_num_batched_tokens</c>).</param>
/// <param name="PrefillChunk">Prompt tokens one sequence prefills per iteration at most (<c>long_prefill_token_threshold</c>):
/// a long prompt takes several iterations and the running sequences' decode steps go on between them.</param>
/// <param name="MaxWaiting">Requests queued for admission at most; one more is refused (the API's 429).</param>
/// <param name="PrefixCaching">Whether full blocks of known tokens are shared between sequences with the same prefix.</param>
public sealed record IterationSchedulerOptions(
    int MaxSequences = 64,
    int MaxTokensPerStep = 512,
    int PrefillChunk = 256,
    int MaxWaiting = 256,
    bool PrefixCaching = true)
{
    /// <summary>Fails with one line naming the first impossible value.</summary>
    /// <exception cref="InvalidInputException">A limit below 1, or a step budget smaller than the running set or the chunk.</exception>
    public IterationSchedulerOptions Validate()
    {
        if (MaxSequences < 1 || MaxTokensPerStep < 1 || PrefillChunk < 1 || MaxWaiting < 0)
        {
            throw new InvalidInputException($"scheduler limits must be positive: max sequences {MaxSequences}, tokens per step {MaxTokensPerStep}, prefill chunk {PrefillChunk}, waiting {MaxWaiting}");
        }

        if (MaxTokensPerStep < MaxSequences || MaxTokensPerStep < PrefillChunk)
        {
            throw new InvalidInputException($"tokens per step ({MaxTokensPerStep}) must be at least the running set ({MaxSequences}) and the prefill chunk ({PrefillChunk}): every running sequence needs a token each step");
        }

        return this;
    }
}
