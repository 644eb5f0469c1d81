using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using DistributedInference.Actors.Kernel.Telemetry;
using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Host.Serving;

/// <summary>
/// The continuous-batching engines' gauges, one series per device (<c>di.device</c>): <c>di.serve.sequences.running</c>
/// and <c>di.serve.sequences.waiting</c> ({sequence}), <c>di.kv_cache.blocks.used</c> and <c>di.kv_cache.blocks.free</c>
/// ({block}), and counters read from the engine: <c>di.kv_cache.prefix.queried</c> and <c>di.kv_cache.prefix.hit</c>
/// ({token}: prompt tokens looked up in the prefix cache and found; their ratio is the hit rate) and
/// <c>di.serve.sequences.preempted</c> ({sequence}), <c>di.serve.engine.busy_time</c> (s spent running iterations: its rate is
/// the device's busy fraction).
/// </summary>
public static class EngineMetrics
{
    private static readonly ConcurrentDictionary<ContinuousBatchingEngine, string> Engines = new();

    static EngineMetrics()
    {
        Gauge("serve.sequences.running", "{sequence}", "Sequences in the engine's running set.", l => l.Running);
        Gauge("serve.sequences.waiting", "{sequence}", "Sequences waiting for admission.", l => l.Waiting);
        Gauge("kv_cache.blocks.used", "{block}", "KV cache blocks referenced by a sequence.", l => l.UsedBlocks);
        Gauge("kv_cache.blocks.free", "{block}", "KV cache blocks free (cached prefixes included: evicted when needed).", l => l.TotalBlocks - l.UsedBlocks);
        Instrumentation.Meter.CreateObservableCounter(Instrumentation.Prefix + "kv_cache.prefix.queried", () => Measure(l => l.PrefixQueriedTokens), "{token}", "Prompt tokens looked up in the prefix cache.");
        Instrumentation.Meter.CreateObservableCounter(Instrumentation.Prefix + "kv_cache.prefix.hit", () => Measure(l => l.PrefixHitTokens), "{token}", "Prompt tokens found in the prefix cache.");
        Instrumentation.Meter.CreateObservableCounter(Instrumentation.Prefix + "serve.engine.busy_time", () => Engines.Select(e => new Measurement<double>(e.Key.Load.Busy.TotalSeconds, new KeyValuePair<string, object?>("di.device", e.Value))).ToList(), "s", "Time the engine spent running iterations.");
        Instrumentation.Meter.CreateObservableCounter(Instrumentation.Prefix + "serve.sequences.preempted", () => Measure(l => l.Preemptions), "{sequence}", "Sequences preempted (recomputed later) for want of KV blocks.");
    }

    /// <summary>Reports <paramref name="engine"/> as device <paramref name="device"/> until the result is disposed.</summary>
    public static IDisposable Register(ContinuousBatchingEngine engine, string device)
    {
        Engines[engine] = device;
        return new Unregister(engine);
    }

    private static void Gauge(string name, string unit, string description, Func<EngineLoad, long> read) =>
        Instrumentation.Meter.CreateObservableGauge(Instrumentation.Prefix + name, () => Measure(read), unit, description);

    private static IEnumerable<Measurement<long>> Measure(Func<EngineLoad, long> read) =>
        Engines.Select(e => new Measurement<long>(read(e.Key.Load), new KeyValuePair<string, object?>("di.device", e.Value))).ToList();

    private sealed class Unregister(ContinuousBatchingEngine engine) : IDisposable
    {
        public void Dispose() => Engines.TryRemove(engine, out _);
    }
}
