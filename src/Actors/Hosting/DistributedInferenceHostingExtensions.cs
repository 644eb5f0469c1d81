using Akka.Actor;
using Akka.Hosting;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using Microsoft.Extensions.DependencyInjection;

namespace DistributedInference.Actors.Hosting;

/// <summary>Wires DistributedInference into a host app (Akka.Hosting on Microsoft.Extensions.Hosting).</summary>
public static class DistributedInferenceHostingExtensions
{
    /// <summary>
    /// Adds our HOCON defaults, one device actor per device and the replica splitter (registered in the
    /// <see cref="ActorRegistry"/> as <see cref="ReplicaSplitter"/>) to an actor system a host app configures.
    /// </summary>
    public static AkkaConfigurationBuilder WithReplicaInference(this AkkaConfigurationBuilder builder, ReplicaSetup setup) =>
        WithReplicaInference(builder, setup, null);

    private static AkkaConfigurationBuilder WithReplicaInference(AkkaConfigurationBuilder builder, ReplicaSetup setup, DeviceLoading? loading)
    {
        var model = setup.Validate();
        var devices = setup.Devices.ToList();
        return builder
            .AddHocon(DistributedInferenceConfig.Default(), HoconAddMode.Append)
            .WithActors((system, registry) =>
            {
                var readyTo = loading?.Listen(system, devices.Count);
                var deviceActors = devices.Select((device, i) => system.ActorOf(DeviceActor.Props(device, model, readyTo), DeviceActor.Name(i))).ToList();
                registry.Register<ReplicaSplitter>(system.ActorOf(ReplicaSplitter.Props(deviceActors), ReplicaSplitter.ActorName));
            });
    }

    /// <summary>
    /// Starts an actor system running replica mode with the host, and registers a <see cref="ReplicaClient"/> that
    /// submits jobs to it. The host's start-up returns once every device has loaded its model, and fails with each
    /// device's cause when none could (<see cref="Models.InvalidInputException"/> when the model itself is at fault,
    /// <see cref="JobFailedException"/> otherwise).
    /// </summary>
    public static IServiceCollection AddDistributedInference(this IServiceCollection services, Action<ReplicaSetup> configure, string actorSystemName = "distributed-inference")
    {
        var setup = new ReplicaSetup();
        configure(setup);
        setup.Validate();
        var loading = new DeviceLoading();
        services.AddAkka(actorSystemName, builder => WithReplicaInference(builder, setup, loading));
        services.AddHostedService(_ => loading);
        services.AddSingleton(provider => new ReplicaClient(
            provider.GetRequiredService<ActorSystem>(),
            cancellation => provider.GetRequiredService<IRequiredActor<ReplicaSplitter>>().GetAsync(cancellation)));
        return services;
    }

    /// <summary>
    /// Makes the host's actor system a node of a DistributedInference cluster (cluster provider, our cluster
    /// defaults, joined to the seeds or to itself) with the actors its roles call for, and registers in the
    /// <see cref="ActorRegistry"/> as <see cref="JobCoordinator"/> the way to the job coordinators (the region on a
    /// control node, a proxy elsewhere).
    /// </summary>
    public static AkkaConfigurationBuilder WithDistributedInferenceNode(this AkkaConfigurationBuilder builder, ClusterNodeSetup setup, string actorSystemName = NodeBootstrap.SystemName) =>
        NodeBootstrap.Apply(builder, setup, actorSystemName);

    /// <summary>
    /// Starts a cluster node with the host, and registers a <see cref="ReplicaClient"/> that submits replica jobs to
    /// the cluster's job coordinators (they use the devices of every node) and, as <see cref="ClusterReplicaRoute"/>
    /// decides for a job routed through the region, submits again the rows a lost coordinator owed.
    /// </summary>
    public static IServiceCollection AddDistributedInferenceNode(this IServiceCollection services, Action<ClusterNodeSetup> configure, string actorSystemName = "distributed-inference")
    {
        var setup = new ClusterNodeSetup();
        configure(setup);
        setup.Validate();
        services.AddAkka(actorSystemName, builder => builder.WithDistributedInferenceNode(setup, actorSystemName));
        services.AddSingleton(provider => ClusterReplicaRoute.RegionClient(
            provider.GetRequiredService<ActorSystem>(),
            cancellation => provider.GetRequiredService<IRequiredActor<JobCoordinator>>().GetAsync(cancellation)));
        return services;
    }
}
