using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Nodes;
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

    public List<string> Roles { get; } = [DeviceManager.Role, JobSharding.ControlRole];

    public List<DeviceName> Devices { get; } = [];

    public ReplicaModelFactory? Replica { get; set; }

    /// <summary>
    /// The cluster secret every data-plane connection proves (<c>di secret</c> makes one); required when
    /// <see cref="Host"/> is not a loopback address. Null: none.
    /// </summary>
    public string? Secret { get; set; }

    public ServedStages? Stages { get; set; }

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

    internal IReadOnlyList<string> SeedAddresses(string systemName) => JoinNodes.Select(node => SeedNode.Parse(node, "Join").Address(systemName)).ToList();

    /// <summary>Sets the cluster secret (<see cref="Secret"/>).</summary>
    public ClusterNodeSetup WithSecret(string secret)
    {
        Secret = secret;
        return this;
    }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Secret) && !Kernel.Membership.ClusterSecurity.IsLoopback(Host))
        {
            throw new InvalidInputException($"{Host} is not a loopback address and this node has no cluster secret (WithSecret): {Kernel.Membership.ClusterSecurity.HowToMakeASecret}");
        }

        if (Roles.Contains(DeviceManager.Role) && (Devices.Count == 0 || (Replica is null && Stages is null)))
        {
            throw new InvalidInputException("a node with the device role needs devices (OnDevices) and a model to serve (ServingReplicas or ServingStages)");
        }
    }
}
