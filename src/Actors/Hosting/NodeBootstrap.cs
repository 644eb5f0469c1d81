using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Kernel;
using DistributedInference.Actors.Kernel.Membership;

namespace DistributedInference.Actors.Hosting;

/// <summary>
/// THE bootstrap of a DistributedInference cluster process, whoever starts it: <c>di node</c>, a client
/// (<c>di infer --join</c>, <c>di launch</c>'s own, <c>di serve --join</c>) and a host app
/// (<see cref="DistributedInferenceHostingExtensions.WithDistributedInferenceNode"/>) all go through <see cref="Configure"/>
/// (one configuration, the cluster secret and certificate written once) and <see cref="AfterStart"/> (the kernel's
/// services, then the actors the node's roles call for), so a host app gets what <c>di node</c> gets: Akka.Remote over
/// TLS with a certificate, the data plane, the membership gate.
/// </summary>
public static class NodeBootstrap
{
    /// <summary>The actor system name of every process of a cluster.</summary>
    public const string SystemName = NodeServices.SystemName;

    /// <summary>The node's configuration (<see cref="NodeServices.Configure"/> with the setup's values).</summary>
    /// <remarks>A node with only the client role runs without Akka's CLR shutdown hook: its program handles the signals.</remarks>
    /// <exception cref="Models.InvalidInputException">The setup is not valid (<see cref="ClusterNodeSetup.Validate"/>), its config file is not, or it listens off loopback without a cluster secret.</exception>
    public static Config Configure(ClusterNodeSetup setup, string systemName = SystemName)
    {
        setup.Validate();
        var config = NodeServices.Configure(setup.Host, setup.Port, setup.Roles, setup.JoinNodes, setup.Secret, setup.TlsCertificate, setup.TlsPassword, setup.ConfigFile, systemName, setup.Discovery);

        // A secret may come from the setup or the file: the one check is on what the node will run with.
        ClusterSecurity.From(config).RequireSecretOffLoopback(setup.Host);

        // A client's program owns SIGINT/SIGTERM (it cancels its job, then leaves): Akka's own hook would stop every actor
        // first, ending the job's answers before the program could say it was cancelled.
        return setup.Roles.All(role => role == ClusterNodeActors.ClientRole)
            ? ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-clr-shutdown-hook = off").WithFallback(config)
            : config;
    }

    /// <summary>
    /// Starts the node: checks its security settings and ports, starts the actor system (TLS with a certificate), its data
    /// plane and membership gate, and the actors its roles call for; a node without nodes to join starts the cluster.
    /// </summary>
    /// <exception cref="Models.InvalidInputException">A bad setup, no secret off loopback, a bad certificate, a port in use.</exception>
    public static ActorSystem Start(ClusterNodeSetup setup)
    {
        var system = NodeServices.StartSystem(Configure(setup));
        try
        {
            StartActors(system, setup);
        }
        catch
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(10));
            throw;
        }

        return system;
    }

    /// <summary>
    /// A host app's actor system as a node: the configuration over Akka.Hosting's, the TLS setup with a certificate, and once
    /// the system runs, <see cref="AfterStart"/>; the way to the job coordinators is registered as <see cref="JobCoordinator"/>.
    /// </summary>
    public static AkkaConfigurationBuilder Apply(AkkaConfigurationBuilder builder, ClusterNodeSetup setup, string systemName = SystemName)
    {
        var config = Configure(setup, systemName);
        if (ClusterSecurity.From(config).Tls() is { } tls)
        {
            builder.AddHocon(tls.Config, HoconAddMode.Prepend).AddSetup(tls.Setup);
        }

        return builder
            .AddHocon(config, HoconAddMode.Prepend)
            .WithActors((system, registry) => registry.Register<JobCoordinator>(AfterStart(system, setup)));
    }

    /// <summary>
    /// What a started node runs: the kernel's services (data plane, membership gate), then its roles' actors; returns the
    /// way to the job coordinators (the region on a control node, a proxy elsewhere).
    /// </summary>
    public static IActorRef AfterStart(ActorSystem system, ClusterNodeSetup setup)
    {
        NodeServices.Start(system);
        return StartActors(system, setup);
    }

    private static IActorRef StartActors(ActorSystem system, ClusterNodeSetup setup) =>
        ClusterNodeActors.Start(system, setup.Devices, setup.Replica, setup.Stages, setup.Generation) ?? JobSharding.StartProxy(system);
}
