using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using DistributedInference.Actors.Kernel.Telemetry;

namespace DistributedInference.Host.Serving;

/// <summary>
/// Serving's instruments, named as OpenTelemetry's GenAI semantic conventions name them (attributes
/// <c>gen_ai.operation.name</c>: <c>text_completion</c>, <c>chat</c> or <c>embeddings</c>; <c>gen_ai.request.model</c>: the
/// served model's name; <c>error.type</c> on failed requests): <c>gen_ai.server.request.duration</c> (s, from the request's
/// arrival to its last token), <c>gen_ai.server.time_to_first_token</c> (s, to its first generated token),
/// <c>gen_ai.server.time_per_output_token</c> (s, after the first token, per token), <c>gen_ai.client.token.usage</c>
/// ({token}, <c>gen_ai.token.type</c> <c>input</c> or <c>output</c>: per request, the usage its response reports), and ours:
/// <c>di.serve.requests.running</c> (requests in flight) and <c>di.serve.requests.rejected</c> (429 answers).
/// Every measurement also carries <c>gen_ai.provider.name</c> <c>distributed-inference</c>. di serve and its
/// <c>IChatClient</c> record through this one class (<c>di batch</c> has its own counters, <c>BatchMetrics</c>).
/// Requests refused before they reach a model (400, 401, 404, 429) are not timed.
/// </summary>
public static class ServingMetrics
{
    /// <summary><c>gen_ai.operation.name</c> of completions.</summary>
    public const string TextCompletion = "text_completion";

    /// <summary><c>gen_ai.operation.name</c> of chat completions.</summary>
    public const string Chat = "chat";

    /// <summary><c>gen_ai.operation.name</c> of embeddings.</summary>
    public const string Embeddings = "embeddings";

    // The bucket boundaries GenAI's conventions advise for each histogram.
    private static readonly double[] DurationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    private static readonly double[] FirstTokenBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
    private static readonly double[] PerTokenBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5];
    private static readonly double[] TokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

    private static readonly Histogram<double> Duration = Instrumentation.Meter.CreateHistogram(
        "gen_ai.server.request.duration", "s", "Generative AI server request duration such as time-to-last byte or last output token.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

    private static readonly Histogram<double> FirstToken = Instrumentation.Meter.CreateHistogram(
        "gen_ai.server.time_to_first_token", "s", "Time to generate first token for successful responses.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = FirstTokenBuckets });

    private static readonly Histogram<double> PerOutputToken = Instrumentation.Meter.CreateHistogram(
        "gen_ai.server.time_per_output_token", "s", "Time per output token generated after the first token for successful responses.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = PerTokenBuckets });

    private static readonly Histogram<long> Tokens = Instrumentation.Meter.CreateHistogram(
        "gen_ai.client.token.usage", "{token}", "Number of input and output tokens used.",
        advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = TokenBuckets.Select(b => (long)b).ToArray() });

    private static readonly UpDownCounter<int> Running = Instrumentation.Meter.CreateUpDownCounter<int>(
        Instrumentation.Prefix + "serve.requests.running", "{request}", "Requests the server is answering now.");

    private static readonly Counter<long> Rejected = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "serve.requests.rejected", "{request}", "Requests answered 429: more were in flight than the server takes.");

    /// <summary>A request joined the server's running ones; dispose the result when it left.</summary>
    public static IDisposable Enter()
    {
        Running.Add(1);
        return new Leave();
    }

    /// <summary>A request was refused for want of room (429).</summary>
    public static void Refused() => Rejected.Add(1);

    /// <summary>
    /// <paramref name="deltas"/> as they come, recording the request's duration, time to first token, time per output token
    /// and token usage (<paramref name="promptTokens"/> in, the deltas' tokens out) when it ends; a request that fails or is
    /// cancelled records its duration with <c>error.type</c> only.
    /// </summary>
    /// <param name="startedAt">When the request arrived (<see cref="Stopwatch.GetTimestamp"/>).</param>
    public static async IAsyncEnumerable<SequenceDelta> Measure(
        IAsyncEnumerable<SequenceDelta> deltas, string operation, string model, int promptTokens, long startedAt,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var tags = Tags(operation, model);
        TimeSpan? first = null;
        var output = 0;
        // Each choice's first and last token and its count: with n > 1 the choices decode side by side.
        var choices = new Dictionary<int, (TimeSpan First, TimeSpan Last, int Tokens)>();
        string? error = "cancelled";
        await using var enumerator = deltas.GetAsyncEnumerator(cancellation);
        try
        {
            while (true)
            {
                try
                {
                    if (!await enumerator.MoveNextAsync())
                    {
                        break;
                    }
                }
                catch (Exception e)
                {
                    error = ErrorType(e);
                    throw;
                }

                var delta = enumerator.Current;
                if (delta.Tokens.Count > 0)
                {
                    var now = Stopwatch.GetElapsedTime(startedAt);
                    first ??= now;
                    choices[delta.Choice] = choices.TryGetValue(delta.Choice, out var seen) ? (seen.First, now, seen.Tokens + delta.Tokens.Count) : (now, now, delta.Tokens.Count);
                }

                output += delta.Tokens.Count;
                yield return delta;
            }

            error = null;
        }
        finally
        {
            // A consumer that stopped early (its client went away) leaves error "cancelled".
            var duration = Stopwatch.GetElapsedTime(startedAt);
            if (error is null)
            {
                Succeeded(tags, duration, promptTokens, output, first, choices.Values);
            }
            else
            {
                Failed(tags, duration, error);
            }
        }
    }

    /// <summary>A request that produces no tokens (embeddings) ended: its duration and <paramref name="inputTokens"/>.</summary>
    public static void Ended(string operation, string model, long startedAt, int inputTokens, Exception? error = null)
    {
        var tags = Tags(operation, model);
        var duration = Stopwatch.GetElapsedTime(startedAt);
        if (error is not null)
        {
            Failed(tags, duration, ErrorType(error));
            return;
        }

        Duration.Record(duration.TotalSeconds, tags);
        Tokens.Record(inputTokens, [.. tags, new("gen_ai.token.type", "input")]);
    }

    // Time per output token: each choice's (last - first) / (tokens - 1), averaged over the choices that made 2 or more.
    private static void Succeeded(
        KeyValuePair<string, object?>[] tags, TimeSpan duration, int input, int output, TimeSpan? first, IEnumerable<(TimeSpan First, TimeSpan Last, int Tokens)> choices)
    {
        Duration.Record(duration.TotalSeconds, tags);
        Tokens.Record(input, [.. tags, new("gen_ai.token.type", "input")]);
        Tokens.Record(output, [.. tags, new("gen_ai.token.type", "output")]);
        if (first is { } ttft)
        {
            FirstToken.Record(ttft.TotalSeconds, tags);
        }

        var perToken = choices.Where(c => c.Tokens > 1).Select(c => (c.Last - c.First).TotalSeconds / (c.Tokens - 1)).ToList();
        if (perToken.Count > 0)
        {
            PerOutputToken.Record(perToken.Average(), tags);
        }
    }

    // error.type: the HTTP status of an API error, "cancelled", or the exception's type.
    private static string ErrorType(Exception e) =>
        e is OperationCanceledException ? "cancelled"
        : e is ApiException api ? api.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)
        : e.GetType().Name;

    private static void Failed(KeyValuePair<string, object?>[] tags, TimeSpan duration, string error) =>
        Duration.Record(duration.TotalSeconds, [.. tags, new("error.type", error)]);

    private static KeyValuePair<string, object?>[] Tags(string operation, string model) =>
        [new("gen_ai.operation.name", operation), new("gen_ai.request.model", model), new("gen_ai.provider.name", "distributed-inference")];

    private sealed class Leave : IDisposable
    {
        private int _left;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0)
            {
                Running.Add(-1);
            }
        }
    }
}
