using DistributedInference.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DistributedInference.Host.Telemetry;

/// <summary>
/// A small HTTP server with <see cref="Operations"/>' routes only (<c>/metrics</c>, <c>/health/live</c>,
/// <c>/health/ready</c>), for processes that serve no HTTP of their own: <c>di node --metrics-port</c>. Plain HTTP, no
/// credentials: bind it to an address only scrapers and probes reach.
/// </summary>
public sealed class OperationsServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OperationsServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary><c>http://host:port</c>, with the port it got.</summary>
    public Uri Address { get; }

    /// <summary>Starts listening on <paramref name="host"/>:<paramref name="port"/> (0: any free port).</summary>
    /// <param name="service">The <c>service.instance.id</c> of the metrics' resource (the node's address).</param>
    /// <param name="notReady">Why the process cannot do its work now; null once it can.</param>
    /// <exception cref="InvalidInputException">The host does not resolve, or the port is taken.</exception>
    public static async Task<OperationsServer> StartAsync(string host, int port, string service, Func<CancellationToken, Task<string?>> notReady, CancellationToken cancellation = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(OperationsServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        builder.Services.AddOperations(service, notReady);
        var address = Actors.Kernel.Membership.ListenAddress.Resolve(host);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(address, port);
        });
        var app = builder.Build();
        app.MapOperations();
        try
        {
            await app.StartAsync(cancellation);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new InvalidInputException($"--metrics-port {port}: cannot listen on {host}:{port} ({e.Message.ReplaceLineEndings(" ")})");
        }

        var bound = new Uri(app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return new OperationsServer(app, new Uri($"http://{host}:{bound.Port}"));
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
