using System.Globalization;
using Akka.Actor;
using DistributedInference.Actors.Pipeline;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// Pipeline scheduling on simulated stages of fixed compute time: one call against the ideal (m + s - 1 stage times),
/// and back-to-back calls against one call's bubble (target: steady-state utilisation >= 95%).
/// </summary>
public static class PipelineBenchmark
{
    public static async Task Run(int stages, int microBatches, int calls, TimeSpan stageTime, TextWriter output)
    {
        await using var pipeline = await PipelineRuntime.StartAsync(
            Enumerable.Range(0, stages).Select(_ => (Func<IStageWork>)(() => new SimulatedStageWork(stageTime))).ToList());
        var one = await pipeline.RunAsync(Enumerable.Range(0, microBatches).ToArray(), microBatches);
        var ideal = stageTime * (microBatches + stages - 1);
        await output.WriteLineAsync(Invariant($"pipeline, {stages} simulated stages of {stageTime.TotalMilliseconds} ms, {microBatches} micro-batches:"));
        await output.WriteLineAsync(Invariant($"  one call {one.Metrics.Elapsed.TotalMilliseconds:F0} ms, ideal {ideal.TotalMilliseconds:F0} ms: {one.Metrics.Elapsed / ideal:F3}x; bubble fraction {one.Metrics.BubbleFraction:F3} (theory {(stages - 1.0) / (microBatches + stages - 1):F3})"));

        var before = await pipeline.MetricsAsync();
        var started = DateTime.UtcNow;
        await Task.WhenAll(Enumerable.Range(0, calls).Select(c => pipeline.RunAsync(Enumerable.Range(0, microBatches).ToArray(), microBatches)));
        var elapsed = DateTime.UtcNow - started;
        var streamIdeal = stageTime * ((calls * microBatches) + stages - 1);
        var timings = await pipeline.Coordinator.Ask<List<IReadOnlyList<StageTiming>>>(GetStageTimings.Instance, TimeSpan.FromSeconds(10));
        var from = timings[^1].Where(t => t.Started >= started).Min(t => t.Started);
        var to = timings[0].Max(t => t.Finished);
        var utilisation = timings.Select(stage => stage.Where(t => t.Started >= from && t.Finished <= to).Sum(t => (t.Finished - t.Started).TotalMilliseconds) / (to - from).TotalMilliseconds);
        await output.WriteLineAsync(Invariant($"  {calls} calls back to back {elapsed.TotalMilliseconds:F0} ms, ideal {streamIdeal.TotalMilliseconds:F0} ms: {elapsed / streamIdeal:F3}x; steady-state utilisation {string.Join(" ", utilisation.Select(u => u.ToString("P1", CultureInfo.InvariantCulture)))} (target >= 95%); {before.Calls} earlier call(s)"));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
