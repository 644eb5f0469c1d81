using System.Text.Json.Nodes;
using DistributedInference.Models.Serving;

namespace DistributedInference.Host.Serving;

/// <summary>One choice of a finished generation request: its text (stop strings applied), tokens and finish reason.</summary>
/// <param name="StopReason">The stop string that ended it, or the stop token id (vLLM's <c>stop_reason</c>); null otherwise.</param>
public sealed record ChoiceResult(string Text, IReadOnlyList<GeneratedToken> Tokens, FinishReason? Finish, object? StopReason);

/// <summary>
/// A completions or chat request body checked and turned into engine sequences (one per choice, <c>n</c> of them per
/// prompt), and how the finished choices become OpenAI's response body. <c>di serve</c> and <c>di batch</c> read request
/// bodies through this one path, so a body means the same in both.
/// </summary>
/// <param name="Sequences">The engine requests, in choice order (choice i is <c>Sequences[i]</c>).</param>
/// <param name="Logprobs">Top log-probabilities asked per token (0: only the chosen token's); null: none asked.</param>
/// <param name="PromptTokens">Prompt tokens of the whole request (usage).</param>
/// <param name="Body">The non-streaming response body of the finished choices, in choice order.</param>
public sealed record PreparedGeneration(
    IReadOnlyList<GenerationRequest> Sequences,
    SamplingRequest Sampling,
    int? Logprobs,
    string Id,
    long Created,
    int PromptTokens,
    Func<IReadOnlyList<ChoiceResult>, JsonObject> Body);

/// <summary>An embeddings request body checked: its token rows, and how their vectors become OpenAI's response body.</summary>
/// <param name="Rows">Token ids of each input, unpadded, within the model's vocabulary and length.</param>
/// <param name="Body">The response body of one float32 vector per row, in row order.</param>
public sealed record PreparedEmbedding(IReadOnlyList<IReadOnlyList<long>> Rows, Func<IReadOnlyList<float[]>, JsonObject> Body);
