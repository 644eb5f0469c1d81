using Akka.Actor;
using DistributedInference.Actors.Pipeline;
using Xunit.Abstractions;

namespace DistributedInference.Actors.Tests.Pipeline;

/// <summary>Pipeline scheduling on simulated stages of fixed compute time.</summary>
[Collection(TimedTests.Collection)]
public sealed class PipelineSimulationTests
{
    private static readonly TimeSpan StageTime = TimeSpan.FromMilliseconds(40);
    private readonly ITestOutputHelper _output;

    public PipelineSimulationTests(ITestOutputHelper output) => _output = output;

    private static Task<PipelineRuntime> Simulated(int stages) =>
        PipelineRuntime.StartAsync(Enumerable.Range(0, stages).Select(_ => (Func<IStageWork>)(() => new SimulatedStageWork(StageTime))).ToList());

    private static async Task<IReadOnlyList<IReadOnlyList<StageTiming>>> Timings(PipelineRuntime pipeline) =>
        await pipeline.Coordinator.Ask<List<IReadOnlyList<StageTiming>>>(GetStageTimings.Instance, TimeSpan.FromSeconds(10));

    [Fact]
    public async Task One_call_of_16_micro_batches_overlaps_the_4_stages()
    {
        await using var pipeline = await Simulated(4);
        var completed = await pipeline.RunAsync(Enumerable.Range(0, 16).ToArray(), numChunks: 16);

        Assert.Equal(Enumerable.Range(0, 16), ((object[])completed.Output).Cast<int>());
        var timings = (await Timings(pipeline)).SelectMany(t => t).ToList();
        var stageTime = TimeSpan.FromTicks((long)timings.Average(t => (t.Finished - t.Started).Ticks));
        var ideal = stageTime * (16 + 4 - 1);
        var ratio = completed.Metrics.Elapsed / ideal;
        _output.WriteLine($"1 call, 16 micro-batches, 4 stages: {completed.Metrics.Elapsed.TotalMilliseconds:F0} ms, ideal {ideal.TotalMilliseconds:F0} ms " +
                          $"(stage time {stageTime.TotalMilliseconds:F1} ms): {ratio:F3}x; bubble fraction {completed.Metrics.BubbleFraction:F3} " +
                          $"(theory {3.0 / 19:F3})");
        // Speed is di bench pipeline's to measure; here, the schedule: every stage ran every micro-batch, and the stages
        // overlapped (the last stage started before the first had finished the call).
        var stages = await Timings(pipeline);
        Assert.All(stages, stage => Assert.Equal(16, stage.Count));
        Assert.True(stages[^1].Min(t => t.Started) < stages[0].Max(t => t.Finished), "the stages ran one after the other");
    }

    [Fact]
    public async Task Back_to_back_calls_stream_through_the_stages_without_draining()
    {
        await using var pipeline = await Simulated(4);
        var calls = Enumerable.Range(0, 8).Select(c => pipeline.RunAsync(Enumerable.Range(c * 16, 16).ToArray(), numChunks: 16)).ToList();
        var results = await Task.WhenAll(calls);
        for (var c = 0; c < 8; c++)
        {
            Assert.Equal(Enumerable.Range(c * 16, 16), ((object[])results[c].Output).Cast<int>());
        }

        // Steady state: from the last stage's first start to the first stage's last finish.
        var timings = await Timings(pipeline);
        var from = timings[^1].Min(t => t.Started);
        var to = timings[0].Max(t => t.Finished);
        var utilisation = timings.Select(stage => stage
            .Select(t => (Start: t.Started < from ? from : t.Started, End: t.Finished > to ? to : t.Finished))
            .Where(t => t.End > t.Start).Sum(t => (t.End - t.Start).TotalMilliseconds) / (to - from).TotalMilliseconds).ToList();
        var metrics = await pipeline.MetricsAsync();
        _output.WriteLine($"8 calls x 16 micro-batches, 4 stages: steady-state utilisation {string.Join(", ", utilisation.Select(u => u.ToString("P1")))}; " +
                          $"overall bubble fraction {metrics.Total.BubbleFraction:F3} over {metrics.Calls} calls (one call alone: {3.0 / 19:F3})");
        Assert.Equal(8, metrics.Calls);

        // Speed is di bench pipeline's to measure; here, the schedule: the pipe never drains between calls (the first
        // stage starts each call before the last stage has finished the one before).
        var firstStage = timings[0].GroupBy(t => t.JobId).Select(g => g.Min(t => t.Started)).Order().ToList();
        var lastStage = timings[^1].GroupBy(t => t.JobId).Select(g => g.Max(t => t.Finished)).Order().ToList();
        for (var c = 1; c < 8; c++)
        {
            Assert.True(firstStage[c] < lastStage[c - 1], $"call {c} entered after call {c - 1} had left the pipe");
        }
    }

    [Fact]
    public async Task The_credit_window_bounds_micro_batches_inside_the_pipe()
    {
        await using var pipeline = await PipelineRuntime.StartAsync(
            Enumerable.Range(0, 2).Select(_ => (Func<IStageWork>)(() => new SimulatedStageWork(TimeSpan.FromMilliseconds(5)))).ToList(), maxInFlight: 3);
        await pipeline.RunAsync(Enumerable.Range(0, 20).ToArray(), numChunks: 20);
        var timings = await Timings(pipeline);
        // A micro-batch is inside the pipe from the first stage's receipt to the last stage's finish.
        var spans = timings[0].Join(timings[^1], f => f.Index, l => l.Index, (f, l) => (In: f.Received, Out: l.Finished)).ToList();
        var most = spans.Max(s => spans.Count(o => o.In <= s.In && o.Out > s.In));
        Assert.True(most <= 3, $"{most} micro-batches inside the pipe");
    }
}
