using DistributedInference.Actors.Kernel.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace DistributedInference.Host.Telemetry;

/// <summary>
/// OTLP export for every <c>di</c> process (a node, a client, a server, a batch) while
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set: spans of <see cref="Instrumentation.Source"/> (and of <c>di serve</c>'s
/// incoming API requests, which continue a caller's <c>traceparent</c>; probes and scrapes are left out) and the <see cref="Instrumentation.Meter"/>'s
/// metrics, configured by OpenTelemetry's own variables (<c>OTEL_EXPORTER_OTLP_PROTOCOL</c>: <c>grpc</c> by default or
/// <c>http/protobuf</c>; <c>OTEL_EXPORTER_OTLP_HEADERS</c>, <c>OTEL_BSP_SCHEDULE_DELAY</c>, <c>OTEL_SERVICE_NAME</c>, ...).
/// The resource is <c>service.name</c> <c>di</c> (unless <c>OTEL_SERVICE_NAME</c> says otherwise) and
/// <c>service.instance.id</c> host:process id.
/// </summary>
public static class OtlpExport
{
    /// <summary>Starts the exporters when the endpoint variable is set; disposing flushes and stops them (null: not set).</summary>
    public static IDisposable? StartIfConfigured()
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(Operations.OtlpEndpointVariable)))
        {
            return null;
        }

        var instance = $"{Environment.MachineName}:{Environment.ProcessId}";
        void Resource(ResourceBuilder resource) => resource.AddService(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME") ?? "di", serviceInstanceId: instance);
        // Incoming HTTP requests of di serve (method, route, status; a caller's traceparent continued), not the probes and scrapes.
        var tracing = Sdk.CreateTracerProviderBuilder().ConfigureResource(Resource).AddSource(Instrumentation.Name)
            .AddAspNetCoreInstrumentation(http => http.Filter = context => !Operations.IsOperationsPath(context.Request.Path) && context.Request.Path != "/health")
            .AddOtlpExporter().Build();
        var metrics = Sdk.CreateMeterProviderBuilder().ConfigureResource(Resource).AddMeter(Instrumentation.Name).AddOtlpExporter().Build();
        return new Providers(tracing, metrics);
    }

    private sealed class Providers(TracerProvider tracing, MeterProvider metrics) : IDisposable
    {
        public void Dispose()
        {
            tracing.Dispose();
            metrics.Dispose();
        }
    }
}
