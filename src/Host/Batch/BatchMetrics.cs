using System.Diagnostics.Metrics;
using DistributedInference.Actors.Kernel.Telemetry;

namespace DistributedInference.Host.Batch;

/// <summary>
/// <c>di batch</c>'s instruments (exported by OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set):
/// <c>di.batch.requests</c> (requests answered into the output, attribute <c>outcome</c>: <c>completed</c> or
/// <c>failed</c>; its rate is the batch's requests/s) and <c>di.batch.tokens</c> (tokens of the completed ones, attribute
/// <c>gen_ai.token.type</c>: <c>input</c> or <c>output</c>, as their usage says).
/// </summary>
internal static class BatchMetrics
{
    private static readonly Counter<long> Requests = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "batch.requests", "{request}", "Batch-file requests answered into the output, by outcome.");

    private static readonly Counter<long> Tokens = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "batch.tokens", "{token}", "Tokens of the batch-file requests that completed, by type (input, output).");

    public static void Completed(int prompt, int completion)
    {
        Requests.Add(1, new KeyValuePair<string, object?>("outcome", "completed"));
        Tokens.Add(prompt, new KeyValuePair<string, object?>("gen_ai.token.type", "input"));
        Tokens.Add(completion, new KeyValuePair<string, object?>("gen_ai.token.type", "output"));
    }

    public static void Failed() => Requests.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));
}
