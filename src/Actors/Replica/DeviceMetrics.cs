using System.Diagnostics;
using System.Diagnostics.Metrics;
using DistributedInference.Actors.Kernel.Telemetry;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// A device actor's instruments, each with the attribute <c>di.device</c> (<c>cpu:0</c>, <c>cuda:1</c>):
/// <c>di.device.queue.size</c> (batches waiting now), <c>di.device.queue.time</c> (seconds a batch waited before it ran;
/// vLLM's <c>request_queue_time</c> at the device), <c>di.device.busy.time</c> (seconds spent computing: its rate is the
/// device's busy fraction), <c>di.device.rows</c> (rows computed, attribute <c>outcome</c>: <c>completed</c> or
/// <c>failed</c>).
/// </summary>
internal sealed class DeviceMetrics(string device)
{
    private static readonly UpDownCounter<int> QueueSize = Instrumentation.Meter.CreateUpDownCounter<int>(
        Instrumentation.Prefix + "device.queue.size", "{batch}", "Batches waiting for a device now.");

    private static readonly Histogram<double> QueueTime = Instrumentation.Meter.CreateHistogram(
        Instrumentation.Prefix + "device.queue.time", "s", "Time a batch waited in its device's queue before it ran.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] });

    private static readonly Counter<double> BusyTime = Instrumentation.Meter.CreateCounter<double>(
        Instrumentation.Prefix + "device.busy.time", "s", "Time a device spent computing batches (its rate is the busy fraction).");

    private static readonly Counter<long> Rows = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "device.rows", "{row}", "Rows a device computed (outcome completed) or failed.");

    private readonly KeyValuePair<string, object?> _device = new("di.device", device);

    /// <summary>A batch joined the queue; returns its timestamp (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public long Queued()
    {
        QueueSize.Add(1, _device);
        return Stopwatch.GetTimestamp();
    }

    /// <summary>A batch queued at <paramref name="queuedAt"/> left the queue to run.</summary>
    public void Started(long queuedAt)
    {
        QueueSize.Add(-1, _device);
        QueueTime.Record(Stopwatch.GetElapsedTime(queuedAt).TotalSeconds, _device);
    }

    /// <summary>A batch left the queue without running (its job dropped, the device stopped).</summary>
    public void Dropped() => QueueSize.Add(-1, _device);

    /// <summary>A batch of <paramref name="rows"/> rows ran for <paramref name="busy"/>.</summary>
    public void Ran(int rows, TimeSpan busy, bool completed)
    {
        BusyTime.Add(busy.TotalSeconds, _device);
        Rows.Add(rows, _device, new KeyValuePair<string, object?>("outcome", completed ? "completed" : "failed"));
    }
}
