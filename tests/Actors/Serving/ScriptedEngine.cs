using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using DistributedInference.Models;
using DistributedInference.Models.Serving;

namespace DistributedInference.Actors.Tests.Serving;

/// <summary>
/// A generation engine for tests: a request whose prompt starts with id f gets f + Offset, f + Offset + 1, ... one token
/// an update, up to its budget (finish reason length); it holds after <see cref="HoldAfter"/> tokens until cancelled.
/// Prompts starting with <see cref="Invalid"/> or <see cref="Overloaded"/> are refused as such.
/// </summary>
internal sealed class ScriptedEngine : IGenerationEngine, IDisposable
{
    public const long Invalid = 1;
    public const long Overloaded = 2;

    private readonly ConcurrentDictionary<string, TaskCompletionSource> _cancelled = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _started = new();

    /// <summary>Tokens after which a sequence waits for its cancellation; null: none.</summary>
    public int? HoldAfter { get; set; }

    /// <summary>Added to every token (a node whose tokens differ).</summary>
    public long Offset { get; init; }

    public Task Cancelled(string id) => Signal(_cancelled, id).Task;

    public Task Started(string id) => Signal(_started, id).Task;

    public bool HasStarted(string id) => _started.TryGetValue(id, out var started) && started.Task.IsCompleted;

    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var first = request.PromptTokenIds[0];
        if (first == Invalid)
        {
            throw new InvalidInputException("id 1 is outside the vocabulary");
        }

        if (first == Overloaded)
        {
            throw new EngineOverloadedException("256 requests are waiting already");
        }

        Signal(_started, request.RequestId).TrySetResult();
        using var registration = cancellation.Register(() => Signal(_cancelled, request.RequestId).TrySetResult());
        for (var i = 0; i < request.Sampling.MaxTokens; i++)
        {
            if (i == HoldAfter)
            {
                await Task.Delay(Timeout.Infinite, cancellation);
            }

            await Task.Yield();
            var last = i == request.Sampling.MaxTokens - 1;
            yield return new GenerationUpdate([new GeneratedToken(first + Offset + i)], last ? FinishReason.Length : null);
        }
    }

    public void Dispose()
    {
    }

    private static TaskCompletionSource Signal(ConcurrentDictionary<string, TaskCompletionSource> signals, string id) =>
        signals.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}
