using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Dsl;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Discovery;

/// <summary>
/// How a node finds its cluster without a list of seed addresses (<c>di node --discovery</c>): Akka.Management's
/// Cluster Bootstrap (as Akka's own docs describe it) asks a discovery method for the cluster's contact points (the
/// nodes' management HTTP endpoints), probes each one's <c>/bootstrap/seed-nodes</c>, and joins the cluster they
/// report; when none reports a cluster and <see cref="RequiredContactPoints"/> of them have answered for
/// <c>stable-margin</c> (5 s), the node with the lowest contact point starts it and the others join it. Methods:
/// <see cref="Config"/> (a fixed list of <see cref="ContactPoints"/>, host:port of each node's management endpoint,
/// this node's included: a fixed set of machines) and <see cref="Kubernetes"/> (the Kubernetes API lists the running
/// pods labelled <c>app=</c><see cref="ServiceName"/> in the pod's namespace, with a container port named
/// <see cref="ManagementPortName"/>; the pod's service account needs get, list and watch on pods). A node that
/// bootstraps gets keep-majority split-brain resolution (beneath the user's file; seed-list clusters keep
/// keep-oldest, which suits two nodes): the bootstrap is for three or more.
/// </summary>
/// <param name="Method"><see cref="Config"/> or <see cref="Kubernetes"/>.</param>
/// <param name="ContactPoints">Config discovery: every node's management endpoint as host:port (this node's too).</param>
/// <param name="RequiredContactPoints">Contact points that must answer before a new cluster is started (null: all of
/// <see cref="ContactPoints"/> with config discovery, 2 with Kubernetes).</param>
/// <param name="ManagementPort">Where this node serves Akka.Management's HTTP endpoint (on the node's host).</param>
/// <param name="ServiceName">The cluster's name in discovery: the pods' <c>app</c> label on Kubernetes.</param>
public sealed record ClusterDiscovery(
    string Method,
    IReadOnlyList<string> ContactPoints,
    int? RequiredContactPoints = null,
    int ManagementPort = ClusterDiscovery.DefaultManagementPort,
    string ServiceName = ClusterDiscovery.DefaultServiceName)
{
    /// <summary>A fixed list of contact points.</summary>
    public const string Config = "config";

    /// <summary>Pods found through the Kubernetes API.</summary>
    public const string Kubernetes = "kubernetes";

    /// <summary>Akka.Management's usual port.</summary>
    public const int DefaultManagementPort = 8558;

    public const string DefaultServiceName = "distributed-inference";

    /// <summary>The name of the pod's container port that serves the management endpoint (Kubernetes discovery).</summary>
    public const string ManagementPortName = "management";

    private const string MethodKey = "distributed-inference.discovery.method";

    /// <summary>The number of contact points that must answer before a new cluster starts.</summary>
    public int Required => RequiredContactPoints ?? (Method == Config ? ContactPoints.Count : 2);

    /// <summary>Checks the settings (what the user can get wrong) before anything starts.</summary>
    /// <exception cref="InvalidInputException">An unknown method, contact points that are missing, malformed or given to
    /// Kubernetes discovery, a required count out of range, a management port out of range, an empty service name.</exception>
    public void Validate()
    {
        if (Method is not (Config or Kubernetes))
        {
            throw new InvalidInputException($"--discovery {Method}: use {Config} (a list of --contact-point) or {Kubernetes} (pods found through the Kubernetes API)");
        }

        if (ManagementPort is <= 0 or > 65535)
        {
            throw new InvalidInputException($"--management-port {ManagementPort}: a port is 1-65535 (every node must know the others')");
        }

        if (string.IsNullOrWhiteSpace(ServiceName) || ServiceName.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_')))
        {
            throw new InvalidInputException($"--service-name '{ServiceName}': use letters, digits, '-', '.' or '_' (a Kubernetes label value)");
        }

        if (Method == Config && ContactPoints.Count == 0)
        {
            throw new InvalidInputException("--discovery config: give every node's management endpoint with --contact-point HOST:PORT (repeat it, this node's included)");
        }

        if (Method == Kubernetes && ContactPoints.Count > 0)
        {
            throw new InvalidInputException("--contact-point: Kubernetes discovery finds the pods itself; --contact-point goes with --discovery config");
        }

        foreach (var point in ContactPoints)
        {
            SeedNode.Parse(point, "--contact-point");
        }

        if (Required < 1 || (Method == Config && Required > ContactPoints.Count))
        {
            throw new InvalidInputException(string.Create(CultureInfo.InvariantCulture,
                $"--required-contact-points {Required}: between 1 and {(Method == Config ? ContactPoints.Count.ToString(CultureInfo.InvariantCulture) : "the number of pods")}"));
        }
    }

    /// <summary>
    /// The configuration of a node that listens on <paramref name="host"/> and bootstraps so: Akka.Management's
    /// endpoint, the bootstrap's contact-point discovery and the discovery method's own section; no seed nodes.
    /// </summary>
    public Akka.Configuration.Config ToConfig(string host)
    {
        static string Quote(string text) => JsonSerializer.Serialize(text);
        var endpoints = "[" + string.Join(", ", ContactPoints.Select(Quote)) + "]";
        var method = Method == Config ? "config" : "kubernetes-api";
        return ConfigurationFactory.ParseString(string.Create(CultureInfo.InvariantCulture, $$"""
            {{MethodKey}} = {{Quote(Method)}}
            akka.management.http {
              hostname = {{Quote(host)}}
              port = {{ManagementPort}}
            }
            akka.management.cluster.bootstrap.contact-point-discovery {
              service-name = {{Quote(ServiceName)}}
              discovery-method = {{method}}
              required-contact-point-nr = {{Required}}
              {{(Method == Kubernetes ? $"port-name = {Quote(ManagementPortName)}" : string.Empty)}}
            }
            # The contact points are exact endpoints: several nodes on one host differ by port only.
            akka.management.cluster.bootstrap.contact-point.filter-on-fallback-port = {{(Method == Config ? "false" : "true")}}
            akka.discovery.config.services.{{Quote(ServiceName)}}.endpoints = {{endpoints}}
            akka.discovery.kubernetes-api.pod-label-selector = "app={0}"
            """));
    }

    /// <summary>What a bootstrapping node runs beneath the user's file: keep-majority split-brain resolution.</summary>
    public static Akka.Configuration.Config Defaults { get; } = ConfigurationFactory.ParseString("akka.cluster.split-brain-resolver.active-strategy = keep-majority");

    /// <summary>Whether <paramref name="config"/> (from <see cref="ToConfig"/>) bootstraps by discovery.</summary>
    public static bool Configured(Akka.Configuration.Config config) => config.GetString(MethodKey, string.Empty).Length > 0;

    /// <summary>
    /// Starts this node's contact point (<see cref="ContactPointEndpoint"/>, on the management port) and Akka.Management's
    /// Cluster Bootstrap on <paramref name="system"/> (configured by <see cref="ToConfig"/>): its coordinator asks the
    /// discovery method for contact points, probes them over HTTP and joins (or forms) the cluster.
    /// </summary>
    /// <exception cref="InvalidInputException">The contact point cannot listen (its port is taken).</exception>
    public static void Start(ActorSystem system)
    {
        var config = system.Settings.Config;
        var host = config.GetString("akka.management.http.hostname");
        var port = config.GetInt("akka.management.http.port");
        ListenAddress.RequireFree(host, port, "--management-port");
        try
        {
            ContactPointEndpoint.Start(system, host, port);
        }
        catch (System.Net.HttpListenerException e)
        {
            throw new InvalidInputException($"--management-port {port}: cannot serve the bootstrap contact point on {host}:{port}: {e.Message}", e);
        }

        var bootstrap = ClusterBootstrap.Get(system);
        var self = new UriBuilder("http", host, port).Uri;
        // Akka.Management's way to tell the bootstrap its own contact point when the routes are served elsewhere.
        bootstrap.Routes(ManagementRouteProviderSettings.Create(self, readOnly: true));
        _ = bootstrap.Start();
    }
}
