using Akka.Actor;
using Akka.Configuration;
using DistributedInference.Actors.Kernel;
using DistributedInference.Actors.Kernel.Discovery;
using DistributedInference.Models;

namespace DistributedInference.Actors.Tests.Kernel.Discovery;

/// <summary>
/// The configuration a bootstrapping node runs with: no seed nodes, the bootstrap's discovery settings, keep-majority
/// split-brain resolution unless the user's file says otherwise; a seed-list node keeps keep-oldest.
/// </summary>
public sealed class ClusterDiscoveryTests
{
    [Fact]
    public void Config_discovery_lists_the_contact_points_and_resolves_splits_by_majority()
    {
        var discovery = new ClusterDiscovery(ClusterDiscovery.Config, ["10.0.0.1:8558", "10.0.0.2:8558", "10.0.0.3:8558"], RequiredContactPoints: 2);
        var config = NodeServices.Configure("10.0.0.1", 4053, ["device"], [], secret: new string('s', 32), discovery: discovery);

        Assert.True(ClusterDiscovery.Configured(config));
        Assert.Empty(config.GetStringList("akka.cluster.seed-nodes"));
        Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal("10.0.0.1", config.GetString("akka.management.http.hostname"));
        Assert.Equal(8558, config.GetInt("akka.management.http.port"));
        Assert.Equal("config", config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.discovery-method"));
        Assert.Equal(2, config.GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr"));
        Assert.False(config.GetBoolean("akka.management.cluster.bootstrap.contact-point-discovery.contact-with-all-contact-points"));
        Assert.False(config.GetBoolean("akka.management.cluster.bootstrap.contact-point.filter-on-fallback-port"));
        Assert.Equal(discovery.ContactPoints, config.GetStringList("akka.discovery.config.services.distributed-inference.endpoints"));
    }

    [Fact]
    public void Kubernetes_discovery_finds_pods_by_app_label_and_management_port_name()
    {
        var discovery = new ClusterDiscovery(ClusterDiscovery.Kubernetes, [], RequiredContactPoints: 3, ServiceName: "di-node");
        var config = NodeServices.Configure("10.1.2.3", 4053, ["device"], [], secret: new string('s', 32), discovery: discovery);

        Assert.Equal("kubernetes-api", config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.discovery-method"));
        Assert.Equal("di-node", config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.service-name"));
        Assert.Equal(ClusterDiscovery.ManagementPortName, config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.port-name"));
        Assert.Equal(3, config.GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr"));
        Assert.True(config.GetBoolean("akka.management.cluster.bootstrap.contact-point-discovery.contact-with-all-contact-points"));
        Assert.Equal("app={0}", config.GetString("akka.discovery.kubernetes-api.pod-label-selector"));
    }

    [Fact]
    public async Task Kubernetes_discovery_loads_in_a_pod_and_says_in_one_line_that_it_is_not_in_one()
    {
        var discovery = new ClusterDiscovery(ClusterDiscovery.Kubernetes, [], ManagementPort: FreePort());

        // The pod's API server address comes from this variable; PATH stands in for a pod's KUBERNETES_SERVICE_HOST.
        Config Node(string variable) => ConfigurationFactory.ParseString($"akka.discovery.kubernetes-api.api-service-host-env-name = {variable}")
            .WithFallback(NodeServices.Configure("127.0.0.1", 0, ["device"], [], discovery: discovery));

        var outside = ActorSystem.Create(NodeServices.SystemName, Node("DI_TEST_NOT_A_POD"));
        try
        {
            var refused = Assert.Throws<InvalidInputException>(() => ClusterDiscovery.Start(outside));
            Assert.Equal("--discovery kubernetes: not in a Kubernetes pod (DI_TEST_NOT_A_POD is not set); outside Kubernetes use --discovery config or --join", refused.Message);
        }
        finally
        {
            await outside.Terminate();
        }

        var inside = ActorSystem.Create(NodeServices.SystemName, Node("PATH"));
        try
        {
            ClusterDiscovery.Start(inside);
            Assert.Equal("KubernetesApiServiceDiscovery", Akka.Discovery.Discovery.Get(inside).LoadServiceDiscovery("kubernetes-api").GetType().Name);
        }
        finally
        {
            await inside.Terminate();
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public void A_seed_list_node_keeps_keep_oldest_and_the_users_file_wins_over_keep_majority_and_the_kubernetes_defaults()
    {
        Assert.Equal("keep-oldest", NodeServices.Configure("127.0.0.1", 0, ["device"], []).GetString("akka.cluster.split-brain-resolver.active-strategy"));

        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "akka.cluster.split-brain-resolver.active-strategy = keep-oldest\nakka.discovery.kubernetes-api.api-ca-path = \"/etc/di/ca.crt\"");
            var config = NodeServices.Configure("127.0.0.1", 0, ["device"], [], configFile: file, discovery: new ClusterDiscovery(ClusterDiscovery.Config, ["127.0.0.1:8558"]));
            Assert.Equal("keep-oldest", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));

            // The Kubernetes method's own settings lie beneath the file too.
            config = NodeServices.Configure("127.0.0.1", 0, ["device"], [], configFile: file, discovery: new ClusterDiscovery(ClusterDiscovery.Kubernetes, []));
            Assert.Equal("/etc/di/ca.crt", config.GetString("akka.discovery.kubernetes-api.api-ca-path"));
            Assert.Equal("/var/run/secrets/kubernetes.io/serviceaccount/token", config.GetString("akka.discovery.kubernetes-api.api-token-path"));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
