using System.CommandLine;
using System.Globalization;
using DistributedInference.Actors.Kernel.Discovery;
using DistributedInference.Host.CommandLine;
using DistributedInference.Host.Telemetry;
using DistributedInference.Models.Runtime;
using YamlDotNet.RepresentationModel;

namespace DistributedInference.Host.Tests.Deploy;

/// <summary>
/// deploy/kubernetes and deploy/docker cannot run here (no Kubernetes, no container runtime), so they are read: the
/// node's arguments parse with di's own command line and make valid discovery settings; the ports they name are the
/// container ports the probes, the Service and Kubernetes discovery use; labels, selectors, the service account and the
/// RBAC rules agree; the pods start in parallel (the first cluster needs several running at once); the images publish
/// src/Host and run di.
/// </summary>
public sealed class KubernetesManifestTests
{
    private static readonly string Deploy = Path.Combine(DiRunner.RepositoryRoot(), "deploy");

    private static List<YamlMappingNode> Documents(string file)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Deploy, "kubernetes", file));
        stream.Load(reader);
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static YamlMappingNode Kind(IEnumerable<YamlMappingNode> documents, string kind) =>
        Assert.Single(documents, d => Text(d, "kind") == kind);

    private static YamlNode Get(YamlNode node, params string[] path) =>
        path.Aggregate(node, (at, key) => ((YamlMappingNode)at).Children[new YamlScalarNode(key)]);

    private static string Text(YamlNode node, params string[] path) => ((YamlScalarNode)Get(node, path)).Value!;

    private static IEnumerable<YamlMappingNode> Items(YamlNode node, params string[] path) => ((YamlSequenceNode)Get(node, path)).Children.Cast<YamlMappingNode>();

    [Fact]
    public void The_node_statefulset_agrees_with_the_code_the_service_and_the_rbac()
    {
        var nodes = Documents("nodes.yaml");
        var rbac = Documents("rbac.yaml");
        var set = Kind(nodes, "StatefulSet");
        var service = Kind(nodes, "Service");
        var pod = Get(set, "spec", "template");
        var container = Assert.Single(Items(pod, "spec", "containers"));

        // The arguments are a valid di node command line, and the discovery they ask for is valid.
        var args = ((YamlSequenceNode)Get(container, "args")).Children.Select(a => ((YamlScalarNode)a).Value!).ToArray();
        var parsed = DiCommandLine.Create().Parse(args);
        Assert.Empty(parsed.Errors);
        Assert.Equal("node", parsed.CommandResult.Command.Name);
        string Arg(string name) => args[Array.IndexOf(args, name) + 1];
        var discovery = new ClusterDiscovery(
            Arg("--discovery"), [], int.Parse(Arg("--required-contact-points"), CultureInfo.InvariantCulture),
            int.Parse(Arg("--management-port"), CultureInfo.InvariantCulture), Arg("--service-name"));
        discovery.Validate();
        Assert.Equal(ClusterDiscovery.Kubernetes, discovery.Method);

        // Discovery finds the pods by their app label and the container port named "management": both are there.
        var label = string.Format(CultureInfo.InvariantCulture, Actors.Kernel.NodeServices.Configure("10.0.0.1", 4053, ["device"], [], secret: new string('s', 32), discovery: discovery).GetString("akka.discovery.kubernetes-api.pod-label-selector"), discovery.ServiceName);
        Assert.Equal($"app={Text(pod, "metadata", "labels", "app")}", label);
        Assert.Equal(Text(pod, "metadata", "labels", "app"), Text(set, "spec", "selector", "matchLabels", "app"));
        Assert.Equal(Text(pod, "metadata", "labels", "app"), Text(service, "spec", "selector", "app"));
        var ports = Items(container, "ports").ToDictionary(p => Text(p, "name"), p => int.Parse(Text(p, "containerPort"), CultureInfo.InvariantCulture));
        Assert.Equal(discovery.ManagementPort, ports[ClusterDiscovery.ManagementPortName]);
        Assert.Equal(int.Parse(Arg("--port"), CultureInfo.InvariantCulture), ports["akka-remote"]);
        Assert.Equal(int.Parse(Arg("--metrics-port"), CultureInfo.InvariantCulture), ports["metrics"]);
        Assert.Equal(ports, Items(service, "spec", "ports").ToDictionary(p => Text(p, "name"), p => int.Parse(Text(p, "port"), CultureInfo.InvariantCulture)));
        Assert.Equal("$(POD_IP)", Arg("--host"));
        Assert.Equal("status.podIP", Text(Assert.Single(Items(container, "env"), e => Text(e, "name") == "POD_IP"), "valueFrom", "fieldRef", "fieldPath"));

        // The probes are the operations endpoint's, on its port.
        foreach (var (probe, path) in new[] { ("livenessProbe", Operations.LivePath), ("readinessProbe", Operations.ReadyPath) })
        {
            Assert.Equal(path, Text(container, probe, "httpGet", "path"));
            Assert.Equal("metrics", Text(container, probe, "httpGet", "port"));
        }

        Assert.Equal(Arg("--metrics-port"), Text(pod, "metadata", "annotations", "prometheus.io/port"));
        Assert.Equal(Operations.MetricsPath, Text(pod, "metadata", "annotations", "prometheus.io/path"));

        // A new cluster forms once --required-contact-points pods run: they must start together, and be that many.
        Assert.Equal("Parallel", Text(set, "spec", "podManagementPolicy"));
        Assert.True(discovery.Required <= int.Parse(Text(set, "spec", "replicas"), CultureInfo.InvariantCulture));

        // A locally built image is used as it is (":latest" would otherwise be pulled every time); at most one node is
        // drained at a time (keep-majority).
        Assert.Equal("IfNotPresent", Text(container, "imagePullPolicy"));
        var budget = Kind(nodes, "PodDisruptionBudget");
        Assert.Equal("1", Text(budget, "spec", "maxUnavailable"));
        Assert.Equal(Text(pod, "metadata", "labels", "app"), Text(budget, "spec", "selector", "matchLabels", "app"));

        // The cluster secret is a file in a mounted Secret.
        var mount = Assert.Single(Items(container, "volumeMounts"));
        Assert.Equal(Path.GetDirectoryName(Arg("--secret-file")), Text(mount, "mountPath"));
        Assert.Contains(Items(pod, "spec", "volumes"), v => Text(v, "name") == Text(mount, "name") && Text(v, "secret", "secretName").Length > 0);

        // The pods' service account may list pods in their namespace, and only that.
        var account = Text(pod, "spec", "serviceAccountName");
        Assert.Equal(account, Text(Kind(rbac, "ServiceAccount"), "metadata", "name"));
        var role = Kind(rbac, "Role");
        var rule = Assert.Single(Items(role, "rules"));
        Assert.Equal(["pods"], ((YamlSequenceNode)Get(rule, "resources")).Children.Select(n => ((YamlScalarNode)n).Value));
        Assert.Equal(["get", "list", "watch"], ((YamlSequenceNode)Get(rule, "verbs")).Children.Select(n => ((YamlScalarNode)n).Value).Order());
        var binding = Kind(rbac, "RoleBinding");
        Assert.Equal(Text(role, "metadata", "name"), Text(binding, "roleRef", "name"));
        Assert.Equal(account, Text(Assert.Single(Items(binding, "subjects")), "name"));
    }

    [Fact]
    public void The_images_publish_di_from_src_Host_and_the_gpu_one_brings_its_own_libtorch()
    {
        var cpu = File.ReadAllLines(Path.Combine(Deploy, "docker", "Dockerfile"));
        var gpu = File.ReadAllLines(Path.Combine(Deploy, "docker", "Dockerfile.byo-libtorch"));
        foreach (var image in new[] { cpu, gpu })
        {
            var publish = Assert.Single(image, l => l.StartsWith("RUN dotnet publish ", StringComparison.Ordinal));
            Assert.Contains(" src/Host ", publish, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(DiRunner.RepositoryRoot(), "src", "Host", "DistributedInference.Host.csproj")));
            Assert.Contains(" -o /out", publish, StringComparison.Ordinal);
            Assert.Contains("COPY --from=build /out /opt/di", image);
            Assert.Contains("ENTRYPOINT [\"/opt/di/di\"]", image);
        }

        Assert.DoesNotContain(cpu, l => l.Contains("BringYourOwnLibTorch", StringComparison.Ordinal));
        Assert.Contains(gpu, l => l.StartsWith("RUN dotnet publish ", StringComparison.Ordinal) && l.Contains("-p:BringYourOwnLibTorch=true", StringComparison.Ordinal));
        Assert.Contains($"ENV {LibTorch.FolderVariable}=/opt/libtorch", gpu);

        // The build context is the repository: its build outputs (gigabytes, host paths in obj/) stay out.
        var ignored = File.ReadAllLines(Path.Combine(DiRunner.RepositoryRoot(), ".dockerignore"));
        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
        Assert.Contains(".git/", ignored);
    }
}
