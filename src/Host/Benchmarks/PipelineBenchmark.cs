using System.Globalization;
using Akka.Actor;
using DistributedInference.Actors.Pipeline;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// Pipeline scheduling on simulated stages of fixed compute time: one call against the ideal (m + s - 1 stage times),
/// and calls sent at once against their ideal, in milliseconds, with each stage's steady-state utilisation (target:
/// >= 95%). The last line is the headline.
/// </summary>
public static class PipelineBenchmark
{
    public static async Task Run(int stages, int microBatches, int calls, TimeSpan stageTime, TextWriter output)
    {
        await using var pipeline = await PipelineRuntime.StartAsync(
            Enumerable.Range(0, stages).Select(_ => (Func<IStageWork>)(() => new SimulatedStageWork(stageTime))).ToList());
        var one = await pipeline.RunAsync(Enumerable.Range(0, microBatches).ToArray(), microBatches);
        var ideal = stageTime * (microBatches + stages - 1);
        await output.WriteLineAsync(Invariant($"pipeline: {stages} simulated stages, {stageTime.TotalMilliseconds} ms per micro-batch per stage (an Akka timer; its scheduler ticks every 10 ms), {microBatches} micro-batches per call:"));
        await output.WriteLineAsync(Invariant($"  one call: {one.Metrics.Elapsed.TotalMilliseconds:F0} ms against an ideal of {ideal.TotalMilliseconds:F0} ms (({microBatches} + {stages} - 1) x {stageTime.TotalMilliseconds} ms): {ideal / one.Metrics.Elapsed:F3} of ideal; bubble fraction {one.Metrics.BubbleFraction:F3} (theory (s - 1) / (m + s - 1) = {(stages - 1.0) / (microBatches + stages - 1):F3})"));

        var before = await pipeline.MetricsAsync();
        var started = DateTime.UtcNow;
        await Task.WhenAll(Enumerable.Range(0, calls).Select(c => pipeline.RunAsync(Enumerable.Range(0, microBatches).ToArray(), microBatches)));
        var elapsed = DateTime.UtcNow - started;
        var streamIdeal = stageTime * ((calls * microBatches) + stages - 1);
        var timings = await pipeline.Coordinator.Ask<List<IReadOnlyList<StageTiming>>>(GetStageTimings.Instance, TimeSpan.FromSeconds(10));
        var from = timings[^1].Where(t => t.Started >= started).Min(t => t.Started);
        var to = timings[0].Max(t => t.Finished);
        var utilisation = timings.Select(stage => stage.Where(t => t.Started >= from && t.Finished <= to).Sum(t => (t.Finished - t.Started).TotalMilliseconds) / (to - from).TotalMilliseconds).ToList();
        var stageMs = timings.SelectMany(stage => stage.Where(t => t.Started >= started)).Select(t => (t.Finished - t.Started).TotalMilliseconds).DefaultIfEmpty(0).Average();
        await output.WriteLineAsync(Invariant($"  {calls} calls sent at once: {elapsed.TotalMilliseconds:F0} ms against an ideal of {streamIdeal.TotalMilliseconds:F0} ms (({calls} x {microBatches} + {stages} - 1) x {stageTime.TotalMilliseconds} ms): {streamIdeal / elapsed:F3} of ideal; a micro-batch occupied a stage {stageMs:F1} ms on average ({stageTime.TotalMilliseconds} ms simulated); {before.Calls} earlier call(s)"));
        await output.WriteLineAsync(Invariant($"  steady-state utilisation per stage (busy time / time from the last stage's first to the first stage's last micro-batch): {string.Join(" ", utilisation.Select(u => u.ToString("P1", CultureInfo.InvariantCulture)))}"));
        await output.WriteLineAsync(Invariant($"headline: steady-state utilisation, lowest stage {utilisation.Min():P1} (target >= 95%); back-to-back calls at {streamIdeal / elapsed:F3} of ideal"));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
