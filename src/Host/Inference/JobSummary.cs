using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// What a finished job did, for the one line every job ends with on stderr (and <c>--json-summary F</c>): model,
/// mode, devices, rows, wall time from the job's start (loading included), rows/s and tokens/s (generated tokens for
/// generate, input tokens otherwise); for pipelines the bubble fraction.
/// </summary>
public sealed record JobSummary(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("task")] string Task,
    [property: JsonPropertyName("mode")] string Mode,
    [property: JsonPropertyName("devices")] int Devices,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("input_tokens")] long InputTokens,
    [property: JsonPropertyName("generated_tokens")] long GeneratedTokens,
    [property: JsonPropertyName("wall_seconds")] double WallSeconds,
    [property: JsonPropertyName("bubble_fraction")] double? BubbleFraction)
{
    [JsonPropertyName("rows_per_second")]
    public double RowsPerSecond => Rows / Math.Max(WallSeconds, 1e-9);

    /// <summary>Generated tokens per second for generate, input tokens per second otherwise.</summary>
    [JsonPropertyName("tokens_per_second")]
    public double TokensPerSecond => (Task == InferenceTask.Generate.Name() ? GeneratedTokens : InputTokens) / Math.Max(WallSeconds, 1e-9);

    /// <param name="result">The job's results in input order (generate: [B, T + new] ids).</param>
    public static JobSummary Of(PreparedJob job, string mode, int devices, Tensor result, Stopwatch clock, double? bubbleFraction)
    {
        var inputTokens = job.Inputs.AttentionMask is { } mask ? mask.sum().ToInt64() : job.Inputs.InputIds.NumberOfElements;
        var generated = 0L;
        if (job.Task == InferenceTask.Generate)
        {
            var width = job.Inputs.InputIds.shape[1];
            for (var row = 0; row < result.shape[0]; row++)
            {
                generated += TrimmedLength(Models.Generation.Continuation.Of(result[row], width, job.Source.EosTokenIds), job.Source.PadTokenId);
            }
        }

        return new JobSummary(job.Source.Name, job.Task.Name(), mode, devices, job.Inputs.Count, inputTokens, generated, clock.Elapsed.TotalSeconds, bubbleFraction);
    }

    public string Line() => string.Create(CultureInfo.InvariantCulture,
        $"di: done: {Model} {Task}, {Mode} on {Devices} device(s): {Rows} row(s) in {WallSeconds:F2} s, {RowsPerSecond:F2} rows/s, {TokensPerSecond:F1} {(Task == InferenceTask.Generate.Name() ? "generated" : "input")} tokens/s{(BubbleFraction is { } b ? $", bubble fraction {b:F3}" : string.Empty)}");

    /// <summary>The line on stderr unless <paramref name="quiet"/>, and the JSON file when a path is given.</summary>
    public void Report(TextWriter stderr, bool quiet, string? jsonPath)
    {
        if (!quiet)
        {
            stderr.WriteLine(Line());
        }

        if (jsonPath is not null)
        {
            AtomicFile.Write(jsonPath, stream => JsonSerializer.Serialize(stream, this));
        }
    }

    // Generation pads a row that ended early with the pad id; those positions are not generated tokens.
    private static long TrimmedLength(long[] continuation, long pad)
    {
        var length = continuation.Length;
        while (length > 0 && continuation[length - 1] == pad)
        {
            length--;
        }

        return length;
    }
}
