using System.Diagnostics.Metrics;

namespace DistributedInference.Tests.Shared;

/// <summary>
/// The sum of what this process records on one counter of DistributedInference's meter while this object lives (the
/// meter is process-wide: only tests that alone make that counter move may read it). Compiled into each test project
/// that needs it.
/// </summary>
internal sealed class CounterSum : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _total;

    /// <param name="name">The counter, e.g. <c>di.serve.sequences.resumed</c>.</param>
    public CounterSum(string name)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == DistributedInference.Actors.Kernel.Telemetry.Instrumentation.Name && instrument.Name == name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref _total, value));
        _listener.Start();
    }

    public long Total => Interlocked.Read(ref _total);

    public void Dispose() => _listener.Dispose();
}
