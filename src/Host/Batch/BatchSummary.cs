using System.Globalization;
using System.Text.Json;
using DistributedInference.Models.Loading;

namespace DistributedInference.Host.Batch;

/// <summary>
/// What a <c>di batch</c> run did: requests of the input, answered by this run (<see cref="Ok"/> with a response,
/// <see cref="Failed"/> with an error line) and by earlier runs of the same output (<see cref="Resumed"/>); tokens
/// counted as the responses' usage reports them; wall time in seconds from start to the output synced.
/// </summary>
/// <remarks>As JSON (<c>--json-summary</c>) in snake_case like <c>di infer</c>'s summary: <c>requests</c>, <c>resumed</c>,
/// <c>ok</c>, <c>failed</c>, <c>prompt_tokens</c>, <c>completion_tokens</c>, <c>wall_seconds</c>, ... <c>ok</c> and
/// <c>failed</c> count this run's answers.</remarks>
public sealed record BatchSummary(
    string Output,
    int Requests,
    int Resumed,
    long Ok,
    long Failed,
    long PromptTokens,
    long CompletionTokens,
    double WallSeconds)
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public double RequestsPerSecond => (Ok + Failed) / Math.Max(WallSeconds, 1e-9);

    /// <summary>Generated tokens per second (input tokens for embeddings-only batches).</summary>
    public double TokensPerSecond => (CompletionTokens > 0 ? CompletionTokens : PromptTokens) / Math.Max(WallSeconds, 1e-9);

    public string Line() => string.Create(CultureInfo.InvariantCulture,
        $"di batch: {Ok + Failed:N0} request(s) answered in {WallSeconds:0.0} s ({Ok:N0} ok, {Failed:N0} failed; {Resumed:N0} answered by an earlier run; {Requests:N0} in the input): {RequestsPerSecond:0.0} requests/s, {PromptTokens:N0} prompt + {CompletionTokens:N0} generated tokens, {TokensPerSecond:0.0} tokens/s -> {Output}");

    public void Report(TextWriter stderr, bool quiet, string? jsonPath)
    {
        if (!quiet)
        {
            stderr.WriteLine(Line());
        }

        if (jsonPath is not null)
        {
            AtomicFile.Write(jsonPath, stream => JsonSerializer.Serialize(stream, this, Json));
        }
    }
}
