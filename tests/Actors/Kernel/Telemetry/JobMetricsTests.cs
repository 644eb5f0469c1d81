using System.Diagnostics.Metrics;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Telemetry;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Tests.Kernel.Supervision;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Telemetry;

/// <summary>
/// What retries cost and how full a pipeline ran, as the meter reports them: <c>di.job.rows.retried</c> and
/// <c>di.job.rows.failed</c> for a job with a row the model always throws on, <c>di.pipeline.bubble_fraction</c> and
/// <c>di.pipeline.call.duration</c> equal to the call's own metrics. Alone (the meter is process-wide).
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class JobMetricsTests : TestKit, IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<(string Name, double Value, Dictionary<string, object?> Tags)> _measurements = [];

    public JobMetricsTests()
        : base(DistributedInferenceConfig.Default())
    {
        LibTorch.Initialize();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == Instrumentation.Meter.Name && (instrument.Name.StartsWith("di.job.", StringComparison.Ordinal) || instrument.Name.StartsWith("di.pipeline.", StringComparison.Ordinal)))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = tags.ToArray().ToDictionary(t => t.Key, t => t.Value);
        lock (_measurements)
        {
            _measurements.Add((instrument.Name, value, copy));
        }
    }

    private List<(string Name, double Value, Dictionary<string, object?> Tags)> Measured(string name)
    {
        lock (_measurements)
        {
            return _measurements.Where(m => m.Name == name).ToList();
        }
    }

    [Fact]
    public async Task A_row_that_always_fails_counts_its_retried_rows_and_one_failed_row()
    {
        var script = new ScriptedReplicaFactory { Throw = (_, rows) => { if (rows.Contains(13)) throw new InvalidOperationException("row 13 breaks the model"); } };
        await using var replica = await ReplicaRuntime.StartAsync([DeviceName.Cpu, DeviceName.Cpu], script.Factory, Sys);

        var result = await replica.Client.RunAsync(Enumerable.Range(0, 30).Cast<object>().ToArray(), new JobOptions(MaxBatchSize: 8) { MaxAttempts = 2 });

        Assert.Equal([13], result.FailedRows.Select(f => f.Index));
        Assert.Equal(1, Measured("di.job.rows.failed").Sum(m => m.Value));
        // 15 rows a device in batches of 8 and 7: rows 8-14 fail twice (queued again: 7 rows, then split: 7), so do 11-14
        // (4 + 4) and 13-14 (2 + 2), then 13 once (1) before its second failure reports it.
        Assert.Equal(27, Measured("di.job.rows.retried").Sum(m => m.Value));
    }

    [Fact]
    public async Task A_pipeline_call_records_its_bubble_fraction_and_duration()
    {
        await using var pipeline = await PipelineRuntime.StartAsync(
            [() => new SimulatedStageWork(TimeSpan.FromMilliseconds(5)), () => new SimulatedStageWork(TimeSpan.FromMilliseconds(5))], Sys);
        using var input = arange(16, ScalarType.Float32).view(8, 2);

        var completed = await pipeline.RunAsync(input, numChunks: 4);

        var bubble = Assert.Single(Measured("di.pipeline.bubble_fraction"));
        Assert.Equal(completed.Metrics.BubbleFraction, bubble.Value);
        Assert.InRange(bubble.Value, 0, 1);
        Assert.Equal(2, bubble.Tags["di.pipeline.stages"]);
        Assert.Equal(completed.Metrics.Elapsed.TotalSeconds, Assert.Single(Measured("di.pipeline.call.duration")).Value);
    }

    public new void Dispose()
    {
        _listener.Dispose();
        base.Dispose();
    }
}
