using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace DistributedInference.Actors.Kernel.Telemetry;

/// <summary>
/// The one <see cref="System.Diagnostics.Metrics.Meter"/> and the one <see cref="System.Diagnostics.ActivitySource"/>
/// of DistributedInference, both named <see cref="Name"/>: every layer creates its instruments on them (the kernel's
/// transport, the replica devices, serving, batch files), so an exporter subscribes to one name. Instruments follow
/// OpenTelemetry's semantic conventions: GenAI's names where they exist (<c>gen_ai.server.time_to_first_token</c>, ...),
/// ours under the <see cref="Prefix"/> prefix for the rest; units as UCUM (<c>s</c>, <c>By</c>, <c>{row}</c>).
/// Recording costs nothing measurable while no listener (an OpenTelemetry <c>MeterProvider</c>, <c>dotnet-counters</c>)
/// subscribes.
/// </summary>
public static class Instrumentation
{
    /// <summary>The name of the meter and of the activity source: <c>DistributedInference</c>.</summary>
    public const string Name = "DistributedInference";

    /// <summary>The prefix of our own instruments' names (<c>di.</c>; Prometheus shows them as <c>di_...</c>).</summary>
    public const string Prefix = "di.";

    /// <summary>The meter every instrument of DistributedInference is created on.</summary>
    public static readonly Meter Meter = new(Name, typeof(Instrumentation).Assembly.GetName().Version?.ToString());

    /// <summary>The source of DistributedInference's spans (jobs, requests, batches).</summary>
    public static readonly ActivitySource Source = new(Name, typeof(Instrumentation).Assembly.GetName().Version?.ToString());
}
