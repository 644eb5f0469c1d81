using DistributedInference.Models.Runtime;
using Microsoft.Extensions.Hosting;

namespace DistributedInference.Host.Serving;

/// <summary>
/// The served model inside a host app: started with the host (the model loaded on this process's devices, or a
/// cluster joined), and, when asked, the OpenAI-compatible HTTP server beside it. <see cref="ServingHostingExtensions"/>
/// registers it with the <c>IChatClient</c> and <c>IEmbeddingGenerator</c> that use it.
/// </summary>
public sealed class ServingHost(ServeOptions options, bool serveHttp) : IHostedService, IAsyncDisposable
{
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ServedModel? _model;
    private ServingBackend? _backend;
    private OpenAIServer? _server;

    public ServeOptions Options { get; } = options;

    /// <summary>The served model (after the host started).</summary>
    public ServedModel Model => _model ?? throw new InvalidOperationException("the host has not started: call host.StartAsync() first");

    /// <summary>Where requests run (after the host started).</summary>
    public ServingBackend Backend => _backend ?? throw new InvalidOperationException("the host has not started: call host.StartAsync() first");

    /// <summary>The HTTP server's address, when the host serves HTTP.</summary>
    public Uri? Address => _server?.Address;

    /// <summary>Completes once the model is served (faults when it could not be).</summary>
    public Task Started => _started.Task;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            LibTorch.Initialize(Options.LibTorch);
            _model = ServedModel.Load(Options.Model, Options.ServedModelName, Options.ChatTemplate, Options.Seed);
            _backend = await ServingBackend.StartAsync(_model, Options, cancellationToken);
            if (serveHttp)
            {
                _server = await OpenAIServer.StartAsync(new ServingContext(_model, _backend, Options), cancellationToken);
            }

            _started.TrySetResult();
        }
        catch (Exception e)
        {
            _started.TrySetException(e);
            throw;
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            await _server.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (_backend is not null)
        {
            await _backend.DisposeAsync();
        }
    }
}
