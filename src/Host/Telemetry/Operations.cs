using DistributedInference.Actors.Kernel.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace DistributedInference.Host.Telemetry;

/// <summary>
/// What an operator probes on a process that serves (<c>di serve</c>, <c>di node --metrics-port</c>): the
/// <see cref="Instrumentation"/> meter exported for Prometheus at <c>GET /metrics</c> (OpenTelemetry's Prometheus
/// exporter: text format 0.0.4, or OpenMetrics when asked; OTLP export is the process's, <see cref="OtlpExport"/>);
/// <c>GET /health/live</c> (200 while the process answers) and <c>GET /health/ready</c> (200 once it can do its work,
/// 503 with the reason before), ASP.NET Core's health checks, as Kubernetes probes expect them.
/// </summary>
public static class Operations
{
    /// <summary>The variable that turns the OTLP exporter on (OpenTelemetry's own name).</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The paths this class maps.</summary>
    public const string MetricsPath = "/metrics", LivePath = "/health/live", ReadyPath = "/health/ready";

    private const string ReadyTag = "ready";

    /// <summary>Registers the meter provider of the Prometheus endpoint and the readiness check.</summary>
    /// <param name="service">The <c>service.instance.id</c> of the resource (the node's address, or host:port of the server).</param>
    /// <param name="notReady">Why the process cannot do its work now; null once it can.</param>
    public static IServiceCollection AddOperations(this IServiceCollection services, string service, Func<string?> notReady) =>
        services.AddOperations(service, _ => Task.FromResult(notReady()));

    /// <inheritdoc cref="AddOperations(IServiceCollection, string, Func{string?})"/>
    public static IServiceCollection AddOperations(this IServiceCollection services, string service, Func<CancellationToken, Task<string?>> notReady)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("di", serviceInstanceId: service))
            .WithMetrics(metrics => metrics.AddMeter(Instrumentation.Name).AddPrometheusExporter());

        services.AddHealthChecks().Add(new HealthCheckRegistration("ready", new ReadyCheck(notReady), HealthStatus.Unhealthy, [ReadyTag]));
        return services;
    }

    /// <summary>Maps <c>/metrics</c>, <c>/health/live</c> and <c>/health/ready</c> (after <see cref="AddOperations"/>).</summary>
    public static void MapOperations(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint(MetricsPath);
        app.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync });
        app.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReadyTag), ResponseWriter = WriteAsync });
    }

    /// <summary>Whether <paramref name="path"/> is one an operator's probe or scraper calls without credentials.</summary>
    public static bool IsOperationsPath(PathString path) => path == MetricsPath || path == LivePath || path == ReadyPath;

    // {"status": "Healthy"} or {"status": "Unhealthy", "reason": "..."}.
    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var reason = report.Entries.Values.Select(e => e.Description).FirstOrDefault(d => d is not null);
        return context.Response.WriteAsync(System.Text.Json.JsonSerializer.Serialize(new { status = report.Status.ToString(), reason }));
    }

    private sealed class ReadyCheck(Func<CancellationToken, Task<string?>> notReady) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            await notReady(cancellationToken) is { } reason ? HealthCheckResult.Unhealthy(reason) : HealthCheckResult.Healthy();
    }
}
