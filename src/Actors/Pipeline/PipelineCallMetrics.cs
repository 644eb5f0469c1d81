using System.Diagnostics.Metrics;
using DistributedInference.Actors.Kernel.Telemetry;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// A pipeline call's instruments, recorded by its coordinator when the call completes: <c>di.pipeline.bubble_fraction</c>
/// (the share of stages x the call's window that no stage spent computing, 0-1: GPipe's bubble, measured) and
/// <c>di.pipeline.call.duration</c> (seconds from the call's submission to its last stage's last finish); attribute
/// <c>di.pipeline.stages</c>.
/// </summary>
internal static class PipelineCallMetrics
{
    private static readonly Histogram<double> Bubble = Instrumentation.Meter.CreateHistogram(
        Instrumentation.Prefix + "pipeline.bubble_fraction", "1", "Share of stages x call window no stage spent computing.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1] });

    private static readonly Histogram<double> Duration = Instrumentation.Meter.CreateHistogram(
        Instrumentation.Prefix + "pipeline.call.duration", "s", "A pipeline call, submission to its last result.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] });

    /// <summary>A call completed with these timings.</summary>
    public static void Completed(PipelineRunMetrics metrics)
    {
        if (metrics.Stages.Count == 0)
        {
            return;
        }

        var stages = new KeyValuePair<string, object?>("di.pipeline.stages", metrics.Stages.Count);
        Bubble.Record(metrics.BubbleFraction, stages);
        Duration.Record(metrics.Elapsed.TotalSeconds, stages);
    }
}
