using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using DistributedInference.Host.Telemetry;
using DistributedInference.Models;
using DistributedInference.Models.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DistributedInference.Host.Serving;

/// <summary>
/// The OpenAI-compatible HTTP server of <c>di serve</c>, on Kestrel with minimal APIs: <c>GET /v1/models</c>,
/// <c>POST /v1/completions</c>, <c>POST /v1/chat/completions</c>, <c>POST /v1/embeddings</c>, vLLM's <c>POST /tokenize</c>
/// and <c>POST /detokenize</c>, <c>GET /health</c>; <c>GET /metrics</c>, <c>GET /health/live</c> and <c>GET /health/ready</c> (<see cref="Operations"/>). With an API key every route but these four wants
/// <c>Authorization: Bearer KEY</c> (401). At most <see cref="ServeOptions.MaxConcurrentRequests"/> generation and
/// embedding requests are in flight (429 with <c>Retry-After</c> beyond). Errors are OpenAI's error object; the server
/// stays up whatever a request does. <see cref="StopAsync"/> drains: no new connections, in-flight requests finish
/// within the drain timeout, new requests on open connections get 503.
/// </summary>
public sealed class OpenAIServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _inFlight;

    private OpenAIServer(WebApplication app, ServingContext serving)
    {
        _app = app;
        Serving = serving;
    }

    public ServingContext Serving { get; }

    /// <summary>Where the server listens: <c>http://host:port</c> with the port it got.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>Starts listening.</summary>
    /// <exception cref="InvalidInputException">A host that is not an address or a name this machine has, a port in use.</exception>
    public static async Task<OpenAIServer> StartAsync(ServingContext serving, CancellationToken cancellation = default)
    {
        var options = serving.Options;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(OpenAIServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, QuietLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.Drain);
        // Draining: not ready (a load balancer stops sending), still live, still scraped.
        var draining = new StrongBox<bool>();
        builder.Services.AddOperations($"{options.Host}:{options.Port}", () => draining.Value ? "shutting down" : serving.Backend.Unavailable);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            kestrel.AddServerHeader = false;
            var certificate = options.HttpsCertificate is { } file ? Certificate(file) : null;
            void Configure(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen)
            {
                if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
            }

            if (options.Host == "localhost")
            {
                kestrel.ListenLocalhost(options.Port, Configure);
            }
            else
            {
                kestrel.Listen(Resolve(options.Host), options.Port, Configure);
            }
        });
        var app = builder.Build();
        app.Lifetime.ApplicationStopping.Register(() => draining.Value = true);
        var server = new OpenAIServer(app, serving);
        server.Configure();
        try
        {
            await app.StartAsync(cancellation);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new InvalidInputException($"--host {options.Host} --port {options.Port}: cannot listen there ({e.Message.ReplaceLineEndings(" ")})");
        }

        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var scheme = options.HttpsCertificate is null ? "http" : "https";
        server.Address = new Uri($"{scheme}://{options.Host}:{new Uri(address.Replace("[::]", "localhost", StringComparison.Ordinal)).Port}");
        return server;
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 Certificate(string file)
    {
        try
        {
            return System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(file, Environment.GetEnvironmentVariable(ServeOptions.HttpsPasswordVariable));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new InvalidInputException($"--https-certificate {file}: {e.Message.ReplaceLineEndings(" ")} (a PKCS#12 file; password in ${ServeOptions.HttpsPasswordVariable})");
        }
    }

    private static IPAddress Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var address))
        {
            return address;
        }

        try
        {
            return Dns.GetHostAddresses(host).FirstOrDefault() ?? throw new InvalidInputException($"--host {host}: no address");
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new InvalidInputException($"--host {host}: {e.Message}");
        }
    }

    private void Configure()
    {
        var serving = Serving;
        var stopping = _app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        _app.Use(async (context, next) =>
        {
            try
            {
                if (stopping.IsCancellationRequested && !Operations.IsOperationsPath(context.Request.Path))
                {
                    throw ApiException.Unavailable("The server is shutting down.");
                }

                if (serving.Options.ApiKey is { } key && context.Request.Path != "/health" && !Operations.IsOperationsPath(context.Request.Path)
                    && context.Request.Headers.Authorization.ToString() != $"Bearer {key}")
                {
                    throw new ApiException(401, "Incorrect API key provided. Send it as 'Authorization: Bearer KEY'.", code: "invalid_api_key");
                }

                await next(context);
            }
            catch (ApiException e)
            {
                await Answer(context, e);
            }
            catch (InvalidInputException e)
            {
                await Answer(context, ApiException.BadRequest(e.Message));
            }
            catch (EngineUnavailableException e)
            {
                await Answer(context, ApiException.Unavailable(e.Message));
            }
            catch (EngineOverloadedException e)
            {
                ServingMetrics.Refused();
                await Answer(context, new ApiException(429, $"Too many requests waiting: {e.Message}.", "rate_limit_error", code: "rate_limit_exceeded") { RetryAfterSeconds = 1 });
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away; its sequences were cancelled with the request.
            }
            catch (Exception e)
            {
                await Answer(context, new ApiException(500, $"Internal server error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}", "server_error"));
            }
        });
        _app.MapGet("/health", (HttpContext context) =>
            serving.Backend.Unavailable is { } reason ? Results.Json(new { status = "unavailable", reason }, statusCode: 503) : Results.Ok());
        _app.MapOperations();
        _app.MapGet("/v1/models", (HttpContext context) => Results.Text(Models(serving).ToJsonString(OpenAIJson.Options), "application/json"));
        _app.MapPost("/v1/completions", context => Limited(context, c => CompletionsEndpoint.HandleAsync(c, serving)));
        _app.MapPost("/v1/chat/completions", context => Limited(context, c => ChatCompletionsEndpoint.HandleAsync(c, serving)));
        _app.MapPost("/v1/embeddings", context => Limited(context, c => EmbeddingsEndpoint.HandleAsync(c, serving)));
        _app.MapPost("/tokenize", context => TokenizeEndpoints.TokenizeAsync(context, serving));
        _app.MapPost("/detokenize", context => TokenizeEndpoints.DetokenizeAsync(context, serving));
        _app.MapFallback(context => throw new ApiException(
            404, $"Unknown request URL: {context.Request.Method} {context.Request.Path}.", code: "unknown_url"));
    }

    private static async Task Answer(HttpContext context, ApiException error)
    {
        if (context.Response.HasStarted)
        {
            // A stream already under way: the error goes as its last event.
            var body = new JsonObject { ["error"] = new JsonObject { ["message"] = error.Message, ["type"] = error.Type, ["param"] = error.Param, ["code"] = error.Code } };
            await context.Response.WriteAsync($"data: {body.ToJsonString(OpenAIJson.Options)}\n\ndata: [DONE]\n\n");
            return;
        }

        await error.WriteAsync(context);
    }

    private async Task Limited(HttpContext context, Func<HttpContext, Task> handle)
    {
        if (Interlocked.Increment(ref _inFlight) > Serving.Options.MaxConcurrentRequests)
        {
            Interlocked.Decrement(ref _inFlight);
            ServingMetrics.Refused();
            throw new ApiException(429, $"Too many requests in flight (at most {Serving.Options.MaxConcurrentRequests}); retry later.", "rate_limit_error", code: "rate_limit_exceeded") { RetryAfterSeconds = 1 };
        }

        try
        {
            using var running = ServingMetrics.Enter();
            await handle(context);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private static JsonObject Models(ServingContext serving) => new()
    {
        ["object"] = "list",
        ["data"] = new JsonArray(new JsonObject
        {
            ["id"] = serving.Model.Name,
            ["object"] = "model",
            ["created"] = OpenAIJson.Now(),
            ["owned_by"] = "distributed-inference",
            ["root"] = serving.Model.Source.Name,
            ["parent"] = null,
            ["max_model_len"] = serving.Model.ContextLength,
        }),
    };

    /// <summary>Stops accepting, lets in-flight requests finish until <paramref name="cancellation"/> (or the drain timeout).</summary>
    public Task StopAsync(CancellationToken cancellation = default) => _app.StopAsync(cancellation);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private sealed class QuietLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
