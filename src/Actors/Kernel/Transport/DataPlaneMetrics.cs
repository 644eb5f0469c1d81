using System.Diagnostics.Metrics;
using DistributedInference.Actors.Kernel.Telemetry;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>
/// The data plane's instruments: bytes and frames written and read (attribute <c>network.io.direction</c>:
/// <c>transmit</c> or <c>receive</c>, as OpenTelemetry's network conventions name them), connections open now
/// (<c>di.data_plane.connections</c>, attribute <c>direction</c>: <c>outgoing</c> or <c>incoming</c>), over every data
/// plane of the process.
/// </summary>
internal static class DataPlaneMetrics
{
    private static readonly KeyValuePair<string, object?> Transmit = new("network.io.direction", "transmit");
    private static readonly KeyValuePair<string, object?> Receive = new("network.io.direction", "receive");

    private static readonly Counter<long> Bytes = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "data_plane.io", "By", "Bytes of frames the data plane wrote to or read from other nodes (headers included).");

    private static readonly Counter<long> Frames = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "data_plane.frames", "{frame}", "Frames (bulk messages) the data plane wrote to or read from other nodes.");

    private static readonly List<WeakReference<TensorDataPlane>> Planes = [];

    static DataPlaneMetrics() =>
        Instrumentation.Meter.CreateObservableUpDownCounter(
            Instrumentation.Prefix + "data_plane.connections", Connections, "{connection}", "Data plane connections open now.");

    /// <summary>Counts <paramref name="plane"/>'s connections in <c>di.data_plane.connections</c> while it lives.</summary>
    public static void Track(TensorDataPlane plane)
    {
        lock (Planes)
        {
            Planes.RemoveAll(reference => !reference.TryGetTarget(out _));
            Planes.Add(new WeakReference<TensorDataPlane>(plane));
        }
    }

    public static void Wrote(long bytes)
    {
        Bytes.Add(bytes, Transmit);
        Frames.Add(1, Transmit);
    }

    public static void Read(long bytes)
    {
        Bytes.Add(bytes, Receive);
        Frames.Add(1, Receive);
    }

    private static IEnumerable<Measurement<int>> Connections()
    {
        int outgoing = 0, incoming = 0;
        lock (Planes)
        {
            foreach (var reference in Planes)
            {
                if (reference.TryGetTarget(out var plane) && !plane.Disposed)
                {
                    outgoing += plane.OutgoingConnections;
                    incoming += plane.OpenConnections;
                }
            }
        }

        return [new(outgoing, new KeyValuePair<string, object?>("direction", "outgoing")), new(incoming, new KeyValuePair<string, object?>("direction", "incoming"))];
    }
}
