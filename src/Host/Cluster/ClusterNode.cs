using Akka.Actor;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Hosting;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// One process of a cluster: an actor system named <see cref="SystemName"/> listening on host:port, joined to the seed
/// nodes (or to itself when it is the first); with the device role, a <see cref="DeviceManager"/> and a
/// <see cref="StageHost"/> for its devices; with the control role, a home for job coordinators (<see cref="JobSharding"/>).
/// </summary>
public static class ClusterNode
{
    public const string SystemName = NodeBootstrap.SystemName;

    /// <summary>The role of a client process (<c>di infer --join</c>, <c>di launch</c>'s own): no devices, no jobs hosted.</summary>
    public const string ClientRole = ClusterNodeActors.ClientRole;

    /// <summary>Starts the node <paramref name="options"/> describe, through the one bootstrap (<see cref="NodeBootstrap"/>).</summary>
    /// <exception cref="InvalidInputException">A bad option, model, device or address; no secret off loopback; a port in use.</exception>
    public static ActorSystem Start(NodeOptions options)
    {
        var setup = new ClusterNodeSetup { Host = options.Host, Port = options.Port, Secret = options.Secret, ConfigFile = options.ConfigFile };
        setup.WithRoles([.. options.Roles]).Join([.. options.Join]);
        if (options.TlsCertificate is not null)
        {
            setup.WithTls(options.TlsCertificate, ClusterSecret.TlsPassword());
        }

        if (options.Discovery is not null)
        {
            setup.WithDiscovery(options.Discovery);
        }

        // The addresses and roles first: a wrong one is said before a model is resolved.
        setup.ValidateAddress();
        Actors.Kernel.Membership.ListenAddress.Resolve(options.Host);
        foreach (var seed in options.Join)
        {
            ClusterInference.Resolve(seed);
        }

        LibTorch.Initialize(options.LibTorch);
        var unknown = options.Serving.FirstOrDefault(s => s is not (NodeOptions.ServeReplica or NodeOptions.ServePipeline or NodeOptions.ServeRequests));
        if (unknown is not null)
        {
            throw new InvalidInputException($"--serve {unknown}: use replica, pipeline, replica,pipeline or requests");
        }

        if (options.Serving.Contains(NodeOptions.ServeReplica) && options.Serving.Contains(NodeOptions.ServeRequests))
        {
            throw new InvalidInputException("--serve replica,requests: a device holds one replica: replica for di infer jobs, or requests for di serve --join");
        }

        var hasDevices = options.Roles.Contains(DeviceManager.Role);
        var source = hasDevices ? AutoModelSource.Resolve(options.Model, options.Seed) : null;
        var task = options.Task;
        if (source is not null)
        {
            ModelTasks.Require(source, task);
        }

        var devices = DeviceName.ParseList(options.Devices);
        foreach (var device in devices.Distinct())
        {
            device.ToTorch();
        }

        setup.Devices.AddRange(devices);

        // The cache's size is checked when the engines start (with the weights loaded); what can be said now is said now.
        if (options.Batching?.Budget is { IsSet: true })
        {
            if (!options.Serving.Contains(NodeOptions.ServeRequests) || !hasDevices || options.Task != InferenceTask.Generate)
            {
                throw new InvalidInputException("--kv-cache-memory and --max-memory size the KV cache of di serve's requests: they need --serve requests, the device role and a decoder");
            }

            foreach (var device in devices.Distinct())
            {
                options.Batching.Budget.MaxMemory?.Of(device);
            }
        }

        // Requests of a decoder: one copy of the weights per device, for di batch's jobs and di serve's engines alike.
        var decoders = source is not null && options.Serving.Contains(NodeOptions.ServeRequests) && task == InferenceTask.Generate
            ? new DeviceDecoders(source, options.DType.ToScalarType())
            : null;
        if (decoders is not null)
        {
            var context = ModelContext.Positions(decoders.Source);
            setup.Generation = new ServedGenerationSetup(ModelIdentity.Of(decoders.Source.Name, decoders.Source.RandomSeed), options.DType, () =>
            {
                var engines = DeviceEngines.Start(decoders, devices, options.Batching ?? new ContinuousBatchingOptions(), context);
                return RunningEngines.Of(engines, [.. engines.Engines.Select((engine, i) => Serving.EngineMetrics.Register(engine, engines.Devices[i].ToString()))]);
            });
        }

        setup.Replica = source is null ? null
            : decoders is not null ? ServingReplica.Factory(decoders)
            : options.Serving.Contains(NodeOptions.ServeReplica) || options.Serving.Contains(NodeOptions.ServeRequests)
                ? source.Replica(task, options.DType.ToScalarType(), ((options.Generation ?? GenerationOptions.Greedy) with { MaxNewTokens = options.MaxNewTokens, Seed = options.Seed }).Validate())
                : null;
        setup.Stages = source is not null && options.Serving.Contains(NodeOptions.ServePipeline) && ModelTasks.RunsPipelined(source, task)
            ? new ServedStages(ModelIdentity.Of(source.Name, source.RandomSeed), task, () => source.LoadStaged(task))
            : null;
        if (hasDevices && setup.Replica is null && setup.Stages is null)
        {
            throw new InvalidInputException($"--serve {string.Join(",", options.Serving)}: the model runs none of these for --task {task.Name()}");
        }

        try
        {
            var system = NodeBootstrap.Start(setup);
            if (decoders is not null)
            {
                // After every actor stopped: the device actors and the engines no longer run the modules.
                system.RegisterOnTermination(decoders.Dispose);
            }

            return system;
        }
        catch
        {
            decoders?.Dispose();
            throw;
        }
    }

    /// <summary>Whether this node is Up in its own view of the cluster.</summary>
    public static bool IsUp(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        return cluster.State.Members.Any(m => m.Address.Equals(cluster.SelfAddress) && m.Status == Akka.Cluster.MemberStatus.Up);
    }

    /// <summary>Waits until this node is Up in its cluster.</summary>
    public static Task WhenUp(ActorSystem system, TimeSpan timeout)
    {
        var up = new TaskCompletionSource();
        Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => up.TrySetResult());
        return up.Task.WaitAsync(timeout);
    }
}
