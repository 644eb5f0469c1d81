using Akka.Actor;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Kernel.Discovery;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Serving;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Cluster.Nodes;

/// <summary>
/// A staged model a node serves to pipelines: the model (its weights) and the task it is staged for, which a pipeline
/// must ask for, and how to load it.
/// </summary>
public sealed record ServedStages(ModelIdentity Model, InferenceTask Task, Func<IStagedModel> Load);

/// <summary>
/// The actors of one cluster node, by its roles: with <see cref="DeviceManager.Role"/>, device actors holding
/// <c>replica</c>, a stage host serving <c>stages</c> and a <see cref="GenerationHost"/> running <c>generation</c> (each may be
/// left out); with
/// <see cref="JobSharding.ControlRole"/>, a home for job coordinators: the job region it returns (null without the
/// role; <see cref="JobSharding.StartProxy"/> reaches the region from any node). A node configured without seed nodes
/// and without discovery (<see cref="ClusterDiscovery"/>, whose bootstrap decides) starts the cluster: it joins itself.
/// </summary>
public static class ClusterNodeActors
{
    /// <summary>The role of a client process (<c>di infer --join</c>, <c>di launch</c>'s own): no devices, no jobs hosted.</summary>
    public const string ClientRole = "client";

    public static IActorRef? Start(ActorSystem system, IReadOnlyList<DeviceName> devices, ReplicaModelFactory? replica, ServedStages? stages, ServedGenerationSetup? generation = null)
    {
        var roles = Akka.Cluster.Cluster.Get(system).SelfRoles;
        if (roles.Contains(DeviceManager.Role) && replica is not null)
        {
            system.ActorOf(DeviceManager.Props(devices, replica), DeviceManager.ActorName);
        }

        if (roles.Contains(DeviceManager.Role) && stages is not null)
        {
            system.ActorOf(StageHost.Props(devices, stages.Model, stages.Task, stages.Load), StageHost.ActorName);
        }

        if (roles.Contains(DeviceManager.Role) && generation is not null)
        {
            system.ActorOf(GenerationHost.Props(generation), GenerationHost.ActorName);
        }

        var jobs = roles.Contains(JobSharding.ControlRole)
            ? JobSharding.StartRegion(system, DistributedInferenceSettings.Get(system).KeepFinishedJobsFor)
            : null;
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (cluster.Settings.SeedNodes.Count == 0 && !ClusterDiscovery.Configured(system.Settings.Config))
        {
            cluster.Join(cluster.SelfAddress);
        }

        return jobs;
    }
}
