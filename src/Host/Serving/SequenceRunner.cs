using System.Runtime.CompilerServices;
using System.Threading.Channels;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tokenization;

namespace DistributedInference.Host.Serving;

/// <summary>Text and tokens a sequence added since its last delta; the last delta of a sequence carries its finish reason.</summary>
/// <param name="StopReason">The stop string that ended it, or the stop token id (vLLM's <c>stop_reason</c>); null otherwise.</param>
public sealed record SequenceDelta(int Choice, string Text, IReadOnlyList<GeneratedToken> Tokens, FinishReason? Finish = null, object? StopReason = null);

/// <summary>
/// Runs sequences on an engine and turns their tokens into text as they come (<see cref="OutputText"/>): a stop string
/// ends the sequence (the engine's request is cancelled), the text before it is the answer; several sequences of one
/// request run at once and their deltas interleave.
/// </summary>
public static class SequenceRunner
{
    /// <summary>One sequence's deltas.</summary>
    public static async IAsyncEnumerable<SequenceDelta> RunAsync(
        IGenerationEngine engine, GenerationRequest request, int choice, ITextTokenizer? tokenizer, SamplingRequest sampling, [EnumeratorCancellation] CancellationToken cancellation)
    {
        var text = tokenizer is null ? null : new OutputText(tokenizer, sampling.Stop, sampling.SkipSpecialTokens, sampling.IncludeStopString);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        FinishReason? finish = null;
        object? stopReason = null;
        long? last = null;
        await foreach (var update in engine.GenerateAsync(request, stop.Token))
        {
            var tokens = new List<GeneratedToken>();
            var delta = string.Empty;
            foreach (var token in update.Tokens)
            {
                tokens.Add(token);
                last = token.TokenId;
                if (text is not null)
                {
                    delta += text.Append(token.TokenId);
                    if (text.MatchedStop is { } matched)
                    {
                        finish = FinishReason.Stop;
                        stopReason = matched;
                        break;
                    }
                }
            }

            if (finish is null && update.Finished is { } done)
            {
                finish = done;
                // The stop token may have come in an earlier update than the one that says the sequence finished.
                if (done == FinishReason.Stop && last is { } id && request.StopTokenIds.Contains(id))
                {
                    stopReason = id;
                }
            }

            if (finish is not null)
            {
                delta += text?.Flush() ?? string.Empty;
                yield return new SequenceDelta(choice, delta, tokens, finish, stopReason);
                break;
            }

            if (delta.Length > 0 || tokens.Count > 0)
            {
                yield return new SequenceDelta(choice, delta, tokens);
            }
        }

        // A stop string ends the sequence here: the engine's request is cancelled with this scope.
        await stop.CancelAsync();
    }

    /// <summary>Several sequences at once: their deltas as they come.</summary>
    public static async IAsyncEnumerable<SequenceDelta> RunAllAsync(
        IGenerationEngine engine, IReadOnlyList<GenerationRequest> requests, ITextTokenizer? tokenizer, SamplingRequest sampling, [EnumeratorCancellation] CancellationToken cancellation)
    {
        if (requests.Count == 1)
        {
            await foreach (var delta in RunAsync(engine, requests[0], 0, tokenizer, sampling, cancellation))
            {
                yield return delta;
            }

            yield break;
        }

        var merged = Channel.CreateUnbounded<SequenceDelta>(new UnboundedChannelOptions { SingleReader = true });
        using var scope = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var runs = requests.Select(async (request, choice) =>
        {
            await foreach (var delta in RunAsync(engine, request, choice, tokenizer, sampling, scope.Token))
            {
                await merged.Writer.WriteAsync(delta, scope.Token);
            }
        }).ToList();
        var all = Task.WhenAll(runs).ContinueWith(t => merged.Writer.TryComplete(t.Exception?.InnerException), TaskScheduler.Default);
        try
        {
            await foreach (var delta in merged.Reader.ReadAllAsync(cancellation))
            {
                yield return delta;
            }
        }
        finally
        {
            await scope.CancelAsync();
            await all;
        }
    }
}
