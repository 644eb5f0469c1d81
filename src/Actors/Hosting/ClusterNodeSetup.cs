using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Kernel.Discovery;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Hosting;

/// <summary>
/// What a host app gives to join a DistributedInference cluster: where to listen, the seed nodes, its roles, and
/// (with the device role) its devices and the models they serve.
/// </summary>
public sealed class ClusterNodeSetup
{
    public string Host { get; set; } = "127.0.0.1";

    public int Port { get; set; }

    /// <summary>Nodes of the cluster to join, as host:port (<c>di node --join</c>); none: this node starts the cluster.</summary>
    public List<string> JoinNodes { get; } = [];

    /// <summary>Finds the cluster through Cluster Bootstrap instead of <see cref="JoinNodes"/> (<c>di node --discovery</c>). Null: seed nodes.</summary>
    public ClusterDiscovery? Discovery { get; set; }

    public List<string> Roles { get; } = [DeviceManager.Role, JobSharding.ControlRole];

    public List<DeviceName> Devices { get; } = [];

    public ReplicaModelFactory? Replica { get; set; }

    /// <summary>
    /// The cluster secret every data-plane connection proves (<c>di secret</c> makes one); required when
    /// <see cref="Host"/> is not a loopback address. Null: none.
    /// </summary>
    public string? Secret { get; set; }

    public ServedStages? Stages { get; set; }

    /// <summary>Continuous-batching engines the cluster's servers send sequences to (<c>di serve --join</c>); null: none.</summary>
    public ServedGenerationSetup? Generation { get; set; }

    /// <summary>A PKCS#12 certificate every node shares: Akka.Remote and the data plane then run mutual TLS (<c>di cert</c> makes one). Null: no TLS.</summary>
    public string? TlsCertificate { get; set; }

    /// <summary>The password of <see cref="TlsCertificate"/>.</summary>
    public string? TlsPassword { get; set; }

    /// <summary>A HOCON file (<c>di config default</c> writes one) under the setup's own values.</summary>
    public string? ConfigFile { get; set; }

    /// <summary>Runs Akka.Remote and the data plane over mutual TLS with this certificate (see <see cref="TlsCertificate"/>).</summary>
    public ClusterNodeSetup WithTls(string certificate, string? password = null)
    {
        (TlsCertificate, TlsPassword) = (certificate, password);
        return this;
    }

    /// <summary>Layers the setup over a HOCON file (see <see cref="ConfigFile"/>).</summary>
    public ClusterNodeSetup WithConfigFile(string path)
    {
        ConfigFile = path;
        return this;
    }

    public ClusterNodeSetup ListenOn(string host, int port)
    {
        (Host, Port) = (host, port);
        return this;
    }

    /// <summary>Joins the cluster these nodes (host:port) belong to, as <c>di node --join</c> does.</summary>
    public ClusterNodeSetup Join(params string[] nodes)
    {
        JoinNodes.AddRange(nodes);
        return this;
    }

    /// <summary>Finds the cluster by discovery (see <see cref="Discovery"/>), as <c>di node --discovery</c> does.</summary>
    public ClusterNodeSetup WithDiscovery(ClusterDiscovery discovery)
    {
        Discovery = discovery;
        return this;
    }

    /// <summary>Replaces the roles (default: device and control); a client-only node has none of them.</summary>
    public ClusterNodeSetup WithRoles(params string[] roles)
    {
        Roles.Clear();
        Roles.AddRange(roles);
        return this;
    }

    public ClusterNodeSetup OnDevices(params string[] devices)
    {
        Devices.AddRange(devices.SelectMany(DeviceName.ParseList));
        return this;
    }

    /// <summary>Each device holds the whole model (replica mode).</summary>
    public ClusterNodeSetup ServingReplicas(ReplicaModelFactory model)
    {
        Replica = model;
        return this;
    }

    /// <summary>Builds pipeline stages of this model on request (pipeline mode), under the name pipelines ask for.</summary>
    public ClusterNodeSetup ServingStages(ServedStages stages)
    {
        Stages = stages;
        return this;
    }

    /// <summary>Runs servers' sequences on continuous-batching engines over this node's devices (<see cref="Generation"/>).</summary>
    public ClusterNodeSetup ServingGeneration(ServedGenerationSetup generation)
    {
        Generation = generation;
        return this;
    }

    /// <summary>Sets the cluster secret (<see cref="Secret"/>).</summary>
    public ClusterNodeSetup WithSecret(string secret)
    {
        Secret = secret;
        return this;
    }

    /// <summary>Checks the setup before anything starts.</summary>
    /// <exception cref="InvalidInputException">A port out of range, no or an unknown role, a device node without devices or model.</exception>
    public void Validate()
    {
        ValidateAddress();
        ValidateServing();
    }

    /// <summary>Checks where the node listens, whom it joins and its roles (what a command line checks before it resolves a model).</summary>
    /// <exception cref="InvalidInputException">A port out of range, no or an unknown role, a join address that is not
    /// host:port, seed nodes and discovery both, invalid discovery settings.</exception>
    public void ValidateAddress()
    {
        if (Port is < 0 or > 65535)
        {
            throw new InvalidInputException($"--port {Port}: a port is 0-65535 (0: any free port)");
        }

        var roles = $"use {DeviceManager.Role}, {JobSharding.ControlRole} or {DeviceManager.Role},{JobSharding.ControlRole}";
        if (Roles.Count == 0)
        {
            throw new InvalidInputException($"--roles: no role given ({roles})");
        }

        if (Roles.FirstOrDefault(r => r is not (DeviceManager.Role or JobSharding.ControlRole or ClusterNodeActors.ClientRole)) is { } unknown)
        {
            throw new InvalidInputException($"--roles {unknown}: unknown role ({roles})");
        }

        foreach (var node in JoinNodes)
        {
            SeedNode.Parse(node, "--join");
        }

        Discovery?.ValidateFor(Host, Port, JoinNodes.Count);
    }

    /// <summary>Checks that a node with the device role has devices and a model to serve.</summary>
    /// <exception cref="InvalidInputException">A device node without devices or model.</exception>
    public void ValidateServing()
    {
        if (Roles.Contains(DeviceManager.Role) && (Devices.Count == 0 || (Replica is null && Stages is null && Generation is null)))
        {
            throw new InvalidInputException("a node with the device role needs devices (OnDevices) and a model to serve (ServingReplicas, ServingStages or ServingGeneration)");
        }
    }
}
