namespace DistributedInference.Models.Serving;

/// <summary>
/// One sequence to generate, what an <see cref="IGenerationEngine"/> takes: the prompt's token ids, how to pick tokens,
/// and the token ids that end it (the model's end-of-sequence ids, the chat template's end-of-turn token, a request's
/// <c>stop_token_ids</c>). Stop strings are text and are matched above the engine, which then cancels the request.
/// </summary>
/// <param name="RequestId">Unique per sequence (logs, cancellation, streams).</param>
/// <param name="PromptTokenIds">At least one id, each inside the vocabulary.</param>
/// <param name="Sampling">Token choice and the token budget.</param>
/// <param name="StopTokenIds">Ids that end the sequence with finish reason stop; the id itself is the last output token.</param>
public sealed record GenerationRequest(string RequestId, IReadOnlyList<long> PromptTokenIds, SamplingParameters Sampling, IReadOnlyList<long> StopTokenIds)
{
    /// <summary>The sequence's index among those of one API request (choice i of n): with the seed, it seeds sampling.</summary>
    public long SequenceIndex { get; init; }
}

/// <summary>Why a sequence ended: a stop token or string (<c>stop</c>), or the token budget (<c>length</c>).</summary>
public enum FinishReason
{
    Stop,
    Length,
}

/// <summary>A token's log-probability.</summary>
public readonly record struct TokenLogprob(long TokenId, double Logprob);

/// <summary>One generated token, with its log-probability and the most likely alternatives when asked for.</summary>
public sealed record GeneratedToken(long TokenId, double? Logprob = null, IReadOnlyList<TokenLogprob>? TopLogprobs = null);

/// <summary>
/// What an engine streams back for a request: tokens generated since the last update (possibly none), and, in the last
/// update only, why the sequence ended.
/// </summary>
public sealed record GenerationUpdate(IReadOnlyList<GeneratedToken> Tokens, FinishReason? Finished = null);
