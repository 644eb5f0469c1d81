using Akka.Actor;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// One process of a cluster: an actor system named <see cref="SystemName"/> listening on host:port, joined to the seed
/// nodes (or to itself when it is the first); with the device role, a <see cref="DeviceManager"/> and a
/// <see cref="StageHost"/> for its devices; with the control role, a home for job coordinators (<see cref="JobSharding"/>).
/// </summary>
public static class ClusterNode
{
    public const string SystemName = "distributed-inference";

    /// <summary>The role of a client process (<c>di infer --join</c>, <c>di launch</c>'s own): no devices, no jobs hosted.</summary>
    public const string ClientRole = "client";

    public static ActorSystem Start(NodeOptions options)
    {
        if (options.Port is < 0 or > 65535)
        {
            throw new InvalidInputException($"--port {options.Port}: a port is 0-65535 (0: any free port)");
        }

        if (options.Roles.Count == 0)
        {
            throw new InvalidInputException($"--roles: no role given (use {DeviceManager.Role}, {JobSharding.ControlRole} or {DeviceManager.Role},{JobSharding.ControlRole})");
        }

        var unknownRole = options.Roles.FirstOrDefault(r => r is not (DeviceManager.Role or JobSharding.ControlRole or ClientRole));
        if (unknownRole is not null)
        {
            throw new InvalidInputException($"--roles {unknownRole}: unknown role (use {DeviceManager.Role}, {JobSharding.ControlRole} or {DeviceManager.Role},{JobSharding.ControlRole})");
        }

        Actors.Kernel.Membership.ListenAddress.Resolve(options.Host);
        LibTorch.Initialize(options.LibTorch);
        Akka.Configuration.Config Build(bool tls) => NodeSecurity.Apply(
            DistributedInferenceConfig.Cluster(options.Host, options.Port, options.Roles, options.Join.Select(node => SeedNode.Parse(node, "--join").Address(SystemName, tls)).ToList(), options.ConfigFile),
            options);

        // With a certificate (flag or config file) Akka.Remote speaks akka.ssl.tcp, and so must the addresses joined.
        var config = Build(tls: false);
        if (config.GetString("distributed-inference.security.tls.certificate", string.Empty).Length > 0)
        {
            config = Build(tls: true);
        }

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

        var system = NodeSecurity.StartSystem(SystemName, options.Host, options.Port, config);
        var replica = source is null ? null
            : options.Serving.Contains(NodeOptions.ServeRequests) && task == InferenceTask.Generate ? Models.Serving.ServingReplica.Factory(source, options.DType.ToScalarType())
            : options.Serving.Contains(NodeOptions.ServeReplica) || options.Serving.Contains(NodeOptions.ServeRequests)
                ? source.Replica(task, options.DType.ToScalarType(), ((options.Generation ?? GenerationOptions.Greedy) with { MaxNewTokens = options.MaxNewTokens, Seed = options.Seed }).Validate())
                : null;
        var stages = source is not null && options.Serving.Contains(NodeOptions.ServePipeline) && ModelTasks.RunsPipelined(source, task)
            ? new ServedStages(ModelIdentity.Of(source.Name, source.RandomSeed), task, () => source.LoadStaged(task))
            : null;
        ClusterNodeActors.Start(system, devices, replica, stages);
        return system;
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
