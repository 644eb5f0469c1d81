using Akka.Actor;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Serving;
using DistributedInference.Host.Cluster;
using DistributedInference.Models;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Serving;

/// <summary>
/// Where <c>di serve</c>'s requests run: for a decoder on this process's devices, one
/// <see cref="ContinuousBatchingEngine"/> per device behind an <see cref="EngineRouter"/>; with <c>--mode pipeline</c>,
/// the decoder cut into one stage per device of this process and served by continuous-batching engines over the stages
/// (<see cref="PipelineEngines"/>: micro-batches of sequences); for a decoder on a cluster
/// joined as a client, the nodes' continuous-batching engines (<see cref="ClusterGenerationEngine"/>: a sequence whose
/// node is lost goes on on another); with <see cref="ServeOptions.ContinuousBatching"/> off, and for embedders, this
/// process's device actors (a <see cref="ReplicaRuntime"/>, started before the server listens) or the cluster's (the
/// replica route of <c>di infer --join</c>, <see cref="ClusterReplicaRoute"/>), looked for again while none serves the
/// model, so requests get 503 until one does.
/// </summary>
public sealed class ServingBackend : IAsyncDisposable
{
    private static readonly TimeSpan RetryEvery = TimeSpan.FromSeconds(2);

    private readonly ServedModel _model;
    private readonly ReplicaRuntime? _runtime;
    private readonly ActorSystem? _cluster;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _serving = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly EngineRouter? _engines;
    private readonly GenerationHosts? _hosts;
    private readonly List<IDisposable> _owned = [];
    private readonly IPipeline? _pipeline;
    private readonly string? _description;
    private ClusterReplicaRoute? _route;
    private ReplicaClient? _client;
    private string? _unavailable;

    private ServingBackend(ServedModel model, ReplicaRuntime? runtime, ActorSystem? cluster, EngineRouter? engines = null, IEnumerable<IDisposable>? owned = null, GenerationHosts? hosts = null, IPipeline? pipeline = null, string? description = null)
    {
        _pipeline = pipeline;
        _description = description;
        _model = model;
        _runtime = runtime;
        _cluster = cluster;
        _engines = engines;
        _hosts = hosts;
        _owned.AddRange(owned ?? []);
        _client = runtime?.Client;
        if (_client is not null || engines is not null)
        {
            _serving.TrySetResult();
        }

        var identity = model.Identity;
        Generation = (IGenerationEngine?)engines
            ?? (hosts is not null ? new ClusterGenerationEngine(cluster!, hosts, identity) : (IGenerationEngine?)null)
            ?? (model.Generates ? new ReplicaGenerationEngine(ClientAsync, identity, model.Source.PadTokenId) : null);
        if (hosts is not null)
        {
            hosts.WhenFound.ContinueWith(_ => _serving.TrySetResult(), TaskScheduler.Default);
        }

        Lost = cluster is null
            ? new TaskCompletionSource<string>().Task
            : cluster.WhenTerminated.ContinueWith(
                _ => "this server is no longer a member of its cluster (downed by the split-brain resolver: it lost the nodes that decide); restart it to join again",
                CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        Embeddings = model.Embeds ? new ReplicaEmbeddingEngine(ClientAsync, identity, model.Source.PadTokenId) : null;
    }

    /// <summary>The generation engine (decoders), or null.</summary>
    public IGenerationEngine? Generation { get; }

    /// <summary>
    /// Completes, with why in one line, when the cluster this server joined as a client has removed it (its actor system
    /// stopped: downed, say): it can serve nothing more. Never completes on this process's devices.
    /// </summary>
    public Task<string> Lost { get; }

    /// <summary>The embedding engine (BERT), or null.</summary>
    public IEmbeddingEngine? Embeddings { get; }

    /// <summary>Why no device serves the model now; null when one does.</summary>
    public string? Unavailable => _hosts is not null ? _hosts.Unavailable
        : _client is null && _engines is null ? Volatile.Read(ref _unavailable) ?? "looking for devices that serve the model" : null;

    /// <summary>Completes once a device serves the model (at once for this machine's devices).</summary>
    public Task WhenServing => _serving.Task;

    /// <summary>What runs the requests, for the start line: <c>1 device(s) here</c>, <c>2 node(s), 3 device(s)</c>.</summary>
    public string Describe() =>
        _description is not null ? _description
        : _engines is not null ? $"{_engines.Engines.Count} device(s) here, continuous batching ({((ContinuousBatchingEngine)_engines.Engines[0]).Load.TotalBlocks} KV blocks per device; requests up to {_model.ContextLength} positions)"
        : _hosts is not null ? (_hosts.Current.Length is > 0 and var nodes ? $"{nodes} node(s) generating, continuous batching on each" : "the cluster's nodes (none generating with the model yet)")
        : _runtime is not null ? $"{_runtime.Devices.Count} device(s) here"
        : _route is { } route ? route.Describe() : "no device yet";

    /// <exception cref="InvalidInputException">A bad device list, dtype or cluster address, or a model the devices reject.</exception>
    /// <exception cref="JobFailedException">A local device could not load the model.</exception>
    public static async Task<ServingBackend> StartAsync(ServedModel model, ServeOptions options, CancellationToken cancellation)
    {
        var dtype = options.DType.ToScalarType();
        if (options.Mode != Inference.Mode.Pipeline && (options.NumChunks is not null || options.SplitPoints != "auto"))
        {
            throw new InvalidInputException("--num-chunks and --split-points cut a model into pipeline stages: they need --mode pipeline");
        }

        if (options.Batching?.Budget is { IsSet: true }
            && (options.Join is { Count: > 0 } || !model.Generates || !options.ContinuousBatching))
        {
            throw new InvalidInputException("--kv-cache-memory and --max-memory size the continuous-batching KV cache of a decoder on this process's devices: not with --join (give them to di node --serve requests), --batching per-request or an embedder");
        }

        if (options.Mode == Inference.Mode.Pipeline)
        {
            if (options.Join is { Count: > 0 } || !model.Generates || !options.ContinuousBatching)
            {
                throw new InvalidInputException("--mode pipeline serves a decoder with continuous batching on this process's devices (not with --join, --batching per-request or an embedder)");
            }

            if (options.Batching?.Budget?.MaxMemory is not null)
            {
                throw new InvalidInputException("--max-memory sizes each device's KV cache in replica mode; with --mode pipeline give the stages' cache as --kv-cache-memory");
            }

            if (options.NumChunks is < 1)
            {
                throw new InvalidInputException($"--num-chunks must be at least 1, got {options.NumChunks}");
            }

            return await StartPipelineAsync(model, options, dtype, cancellation);
        }

        if (options.Join is not { Count: > 0 } && model.Generates && options.ContinuousBatching)
        {
            return StartEngines(model, options, dtype);
        }

        if (options.Join is not { Count: > 0 })
        {
            var factory = model.Generates
                ? ServingReplica.Factory(model.Source, dtype)
                : model.Source.Replica(model.DeviceTask, dtype, Models.Generation.GenerationOptions.Greedy);
            var runtime = await ReplicaRuntime.StartAsync(DeviceName.ParseList(options.Devices), Inference.FaultInjection.Apply(factory), cancellation: cancellation);
            return new ServingBackend(model, runtime, null);
        }

        var client = ClusterNode.Start(new NodeOptions(
            ClusterInference.LocalAddressToward(options.Join[0]), 0, options.Join, [ClusterNode.ClientRole], "cpu", null, options.Model,
            model.DeviceTask, options.DType, 16, options.Seed, options.LibTorch,
            Secret: options.Secret, TlsCertificate: options.TlsCertificate));
        try
        {
            await ClusterJoin.WhenUpAsync(client, options.Join, options.JoinTimeout, cancellation);
        }
        catch
        {
            await client.Terminate();
            throw;
        }

        if (model.Generates && options.ContinuousBatching)
        {
            // Each node runs continuous batching; a sequence whose node is lost goes on on another one.
            return new ServingBackend(model, null, client, hosts: GenerationHosts.Start(client, model.Identity, options.DType, DeviceManager.Role));
        }

        var backend = new ServingBackend(model, null, client);
        _ = backend.FindDevicesAsync(options.DType);
        return backend;
    }

    // One engine per device, each with the model loaded on its device; what was built is disposed if a later device fails.
    private static ServingBackend StartEngines(ServedModel model, ServeOptions options, TorchSharp.torch.ScalarType dtype)
    {
        var owned = new List<IDisposable>();
        var batching = options.Batching ?? new ContinuousBatchingOptions();

        // The server admits requests (--max-concurrent-requests), each of up to 16 sequences (n): the engine queues sequences.
        var scheduler = (batching.Scheduler ?? new IterationSchedulerOptions()) with { MaxWaiting = options.MaxConcurrentRequests * 16 };
        batching = batching with { Scheduler = scheduler };
        var decoders = new DeviceDecoders(model.Source, dtype);
        owned.Add(decoders);
        DeviceEngines engines;
        try
        {
            engines = DeviceEngines.Start(decoders, DeviceName.ParseList(options.Devices), batching, model.ContextLength);
            for (var i = 0; i < engines.Engines.Count; i++)
            {
                owned.Add(EngineMetrics.Register(engines.Engines[i], engines.Devices[i].ToString()));
            }

            // A cache smaller than one full-context sequence limits what a request may use (vLLM's max_model_len).
            model.LimitContext(engines.MaxPositions);
        }
        catch
        {
            Dispose(Enumerable.Reverse(owned));
            throw;
        }

        var description = $"{engines.Engines.Count} device(s) here, continuous batching ({engines.DescribeCache()}; requests up to {model.ContextLength} positions)";
        return new ServingBackend(model, null, null, engines.Router, owned, description: description);
    }

    // The decoder cut into one stage per device, and the engines over the stages; what was started is stopped if a later step fails.
    private static async Task<ServingBackend> StartPipelineAsync(ServedModel model, ServeOptions options, TorchSharp.torch.ScalarType dtype, CancellationToken cancellation)
    {
        var staged = model.Source.LoadStaged(InferenceTask.Generate);
        var owned = new List<IDisposable>();
        if (staged is IDisposable disposable)
        {
            owned.Add(disposable);
        }

        PipelineRuntime? pipeline = null;
        PipelineEngines? engines = null;
        try
        {
            var decoder = staged is LlamaStagedModel llama
                ? PipelineDecoder.Of(llama.Config, dtype)
                : throw new InvalidInputException($"--mode pipeline serves Llama-family decoders ({string.Join(", ", LlamaConfig.SupportedModelTypes)}): {model.Source.ModelType}'s stages cannot generate");
            var plan = Partitioner.Plan(StagedLayerInfo.InDtype(staged.Layers, dtype), DeviceName.ParseList(options.Devices), options.SplitPoints);
            pipeline = await PipelineRuntime.StartAsync(staged, plan, dtype, cancellation: cancellation);
            var batching = options.Batching ?? new ContinuousBatchingOptions();
            var scheduler = (batching.Scheduler ?? new IterationSchedulerOptions()) with { MaxWaiting = options.MaxConcurrentRequests * 16 };
            // A stage off the CPU: the cache is sized as for that device (its free memory unknown through TorchSharp).
            var cacheDevice = plan.Stages.FirstOrDefault(s => s.Device != DeviceName.Cpu)?.Device ?? DeviceName.Cpu;
            engines = PipelineEngines.Start(pipeline, decoder, batching with { Scheduler = scheduler }, options.NumChunks, cacheDevice);
            for (var i = 0; i < engines.Engines.Count; i++)
            {
                owned.Add(EngineMetrics.Register(engines.Engines[i], $"pipeline-{i}"));
            }

            model.LimitContext(engines.MaxPositions);
            var description = $"{pipeline.Stages.Count} pipeline stage(s) here ({string.Join(", ", plan.Stages.Select(s => s.Device))}), continuous batching with {engines.Engines.Count} micro-batch(es) of sequences ({engines.Engines[0].Load.TotalBlocks} KV blocks each; the stages' cache {engines.CacheSizing}; requests up to {model.ContextLength} positions)";
            return new ServingBackend(model, null, null, engines.Router, owned, pipeline: pipeline, description: description);
        }
        catch
        {
            engines?.Dispose();
            Dispose(Enumerable.Reverse(owned));
            if (pipeline is not null)
            {
                await pipeline.DisposeAsync();
            }

            throw;
        }
    }

    private static void Dispose(IEnumerable<IDisposable> owned)
    {
        foreach (var item in owned)
        {
            item.Dispose();
        }
    }

    /// <summary>The replica client of the devices serving the model.</summary>
    /// <exception cref="EngineUnavailableException">No device serves it now.</exception>
    public Task<ReplicaClient> ClientAsync(CancellationToken cancellation) =>
        Task.FromResult(_client ?? throw new EngineUnavailableException($"no device serves {_model.Name}: {Unavailable}"));

    // A cluster: opens the replica route once device nodes are Up and one of their devices serves the model.
    private async Task FindDevicesAsync(Precision dtype)
    {
        var task = _model.DeviceTask;
        var identity = _model.Identity;
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                var cluster = Akka.Cluster.Cluster.Get(_cluster!);
                if (!cluster.State.Members.Any(m => m.Status == Akka.Cluster.MemberStatus.Up && m.HasRole(DeviceManager.Role)))
                {
                    Volatile.Write(ref _unavailable, "no device node is up in the cluster");
                }
                else
                {
                    var route = await ClusterReplicaRoute.OpenAsync(_cluster!, new ReplicaSpec(identity, task, dtype), null, _stopping.Token);
                    if (route.Devices.Count > 0)
                    {
                        _route = route;
                        _client = route.CreateClient();
                        _serving.TrySetResult();
                        return;
                    }

                    await route.DisposeAsync();
                    Volatile.Write(ref _unavailable, $"no device of the cluster serves {identity} (start nodes with --model {_model.Source.Name} --task {task.Name()} --serve requests)");
                }
            }
            catch (Exception e) when (e is InvalidInputException or JobFailedException or AskTimeoutException)
            {
                Volatile.Write(ref _unavailable, e.Message + (task == InferenceTask.Generate ? " (di serve --join needs nodes started with --serve requests)" : string.Empty));
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                await Task.Delay(RetryEvery, _stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_route is not null)
        {
            await _route.DisposeAsync();
        }

        if (_runtime is not null)
        {
            await _runtime.DisposeAsync();
        }

        _hosts?.Dispose();
        if (_cluster is not null)
        {
            await ClusterInference.LeaveAsync(_cluster);
        }

        // The engines first (their threads stop using the models), then the pipeline, the metrics registrations and the models.
        _engines?.Dispose();
        if (_pipeline is not null)
        {
            await _pipeline.DisposeAsync();
        }

        Dispose(Enumerable.Reverse(_owned));

        _stopping.Dispose();
    }
}
