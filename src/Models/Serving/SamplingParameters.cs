namespace DistributedInference.Models.Serving;

/// <summary>
/// How one request picks its tokens, with vLLM's <c>SamplingParams</c> meanings: <see cref="Temperature"/> 0 is greedy;
/// otherwise the scores go through <see cref="RepetitionPenalty"/> (transformers' <c>RepetitionPenaltyLogitsProcessor</c>
/// over the prompt and the tokens so far), then temperature, <see cref="TopK"/> and <see cref="TopP"/> (transformers'
/// warpers, in that order) and a draw from a generator seeded by <see cref="Seed"/> and the sequence's index, so a
/// seeded request samples the same tokens every time, alone or beside others.
/// </summary>
/// <param name="MaxTokens">Tokens to generate at most (at least 1).</param>
/// <param name="Temperature">0: greedy; else divides the scores (&gt; 0).</param>
/// <param name="TopK">Keep the k most likely tokens; 0 (vLLM: -1): all.</param>
/// <param name="TopP">Keep the smallest most-likely set reaching p; in (0, 1].</param>
/// <param name="RepetitionPenalty">&gt; 1 discourages tokens already in the prompt or output; 1: off.</param>
/// <param name="Seed">Seed of the sampling generator (ignored when greedy).</param>
/// <param name="Logprobs">null: no log-probabilities; k &gt;= 0: each token's log-probability and the k most likely
/// alternatives' (log-softmax of the model's raw logits, as vLLM's default <c>raw_logprobs</c>).</param>
public sealed record SamplingParameters(
    int MaxTokens,
    double Temperature = 1.0,
    int TopK = 0,
    double TopP = 1.0,
    double RepetitionPenalty = 1.0,
    long Seed = 0,
    int? Logprobs = null)
{
    /// <summary>Whether tokens are the most likely ones (temperature 0).</summary>
    public bool IsGreedy => Temperature == 0;

    /// <summary>Fails with a one-line <see cref="InvalidInputException"/> naming the first impossible value (vLLM's bounds).</summary>
    public SamplingParameters Validate()
    {
        if (MaxTokens < 1)
        {
            throw new InvalidInputException($"max_tokens must be at least 1, got {MaxTokens}");
        }

        if (!(Temperature >= 0) || double.IsInfinity(Temperature))
        {
            throw new InvalidInputException($"temperature must be non-negative, got {Temperature}");
        }

        if (TopK < 0)
        {
            throw new InvalidInputException($"top_k must be 0 or -1 (disable), or at least 1, got {TopK}");
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            throw new InvalidInputException($"top_p must be in (0, 1], got {TopP}");
        }

        if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty))
        {
            throw new InvalidInputException($"repetition_penalty must be greater than zero, got {RepetitionPenalty}");
        }

        if (Logprobs is < 0 or > 20)
        {
            throw new InvalidInputException($"logprobs must be between 0 and 20, got {Logprobs}");
        }

        return this;
    }
}
