using System.Globalization;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// Pipelined generation on simulated stages (<see cref="SimulatedDecoderWork"/>): S stages, M micro-batches, N new
/// tokens, against the same rows in one micro-batch (<c>--num-chunks 1</c>: sequential model parallelism, Accelerate's
/// <c>device_map</c> style), side by side, under two cost models of a stage step: fixed (memory-bound decode: a step
/// costs the same whatever its rows) and per row (compute-bound: a step's time grows with its rows). Prints the
/// steady-state stage utilisation while decoding (target >= 90% with M >= S), time per output token and tokens/s.
/// </summary>
public static class PipelineGenerateBenchmark
{
    public static async Task Run(int stages, int microBatches, int newTokens, TimeSpan stageTime, TextWriter output)
    {
        var rows = microBatches;
        await output.WriteLineAsync(Invariant($"pipelined generation, {stages} simulated stages, {rows} rows, {newTokens} new tokens, a stage step {stageTime.TotalMilliseconds} ms for {rows / microBatches} row(s):"));
        await output.WriteLineAsync("  cost model        chunks  decode utilisation per stage      bubble  TPOT ms  tokens/s  elapsed ms");
        foreach (var (name, fixedTime, perRow) in new[] { ("fixed per step", stageTime, TimeSpan.Zero), ("per row", TimeSpan.Zero, stageTime * microBatches / rows) })
        {
            foreach (var chunks in new[] { microBatches, 1 })
            {
                await using var pipeline = await PipelineRuntime.StartAsync(
                    Enumerable.Range(0, stages).Select(s => (Func<IStageWork>)(() => new SimulatedDecoderWork(fixedTime, perRow, last: s == stages - 1))).ToList(),
                    maxInFlight: Math.Max(2 * stages, microBatches));
                using var ids = zeros([rows, 1], ScalarType.Int64);
                var result = await PipelineGeneration.GenerateAsync(pipeline, ids, null, null, new GenerationOptions(MaxNewTokens: newTokens), [], 0, chunks);
                var m = result.Metrics;
                result.OutputIds.Dispose();
                var utilisation = m.DecodeUtilisation.Count == 0 ? "(window too short)" : string.Join(" ", m.DecodeUtilisation.Select(u => u.ToString("P1", CultureInfo.InvariantCulture)));
                await output.WriteLineAsync(Invariant($"  {name,-16}  {chunks,6}  {utilisation,-32}  {m.DecodeBubbleFraction,6:F3}  {m.TimePerOutputToken.TotalMilliseconds,7:F1}  {m.TokensPerSecond,8:F1}  {m.Elapsed.TotalMilliseconds,10:F0}"));
            }
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
