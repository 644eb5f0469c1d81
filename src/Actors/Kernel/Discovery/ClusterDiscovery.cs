using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
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
/// <see cref="ContactPoints"/> with config discovery, where at least a majority of them; 2 with Kubernetes, where
/// every pod found must answer as well).</param>
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

        if (ContactPoints.GroupBy(p => p, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new InvalidInputException($"--contact-point {twice.Key}: given twice (list each node's management endpoint once)");
        }

        // A majority of the list: two groups of nodes that cannot see each other at start can never both form a cluster.
        var least = Method == Config ? (ContactPoints.Count / 2) + 1 : 1;
        if (Required < least || (Method == Config && Required > ContactPoints.Count))
        {
            throw new InvalidInputException(string.Create(CultureInfo.InvariantCulture,
                $"--required-contact-points {Required}: between {least} and {(Method == Config ? $"{ContactPoints.Count} (a majority of the --contact-point list, so that no two groups can each form a cluster)" : "the number of pods")}"));
        }
    }

    /// <summary>
    /// Checks the settings against where this node listens: a contact point is recognised as this node's own only when
    /// it is spelled as <paramref name="host"/> is (Akka.Management compares the two), so with config discovery the list
    /// must hold <paramref name="host"/>:<see cref="ManagementPort"/>, and a wildcard host is no contact point at all.
    /// </summary>
    /// <param name="joinNodes">The seed nodes the node was also given (<c>--join</c>): none may be.</param>
    /// <exception cref="InvalidInputException">Seed nodes given too, a wildcard host, this node's contact point missing
    /// from the list, or the management port equal to <paramref name="port"/>.</exception>
    public void ValidateFor(string host, int port, int joinNodes)
    {
        if (joinNodes > 0)
        {
            throw new InvalidInputException($"--join and --discovery {Method}: a node either joins given nodes or finds them by discovery; give one");
        }

        Validate();
        if (host is "0.0.0.0" or "::" or "*" or "+")
        {
            throw new InvalidInputException($"--host {host} with --discovery: give the address the other nodes reach this one at (its contact point and Akka address are spelled so)");
        }

        if (ManagementPort == port)
        {
            throw new InvalidInputException($"--management-port {ManagementPort}: the same as --port; the contact point needs a port of its own");
        }

        var self = string.Create(CultureInfo.InvariantCulture, $"{host}:{ManagementPort}");
        if (Method == Config && !ContactPoints.Contains(self, StringComparer.OrdinalIgnoreCase))
        {
            throw new InvalidInputException($"--contact-point: the list must hold this node's own, {self}, spelled as --host is (each node's contact point as that node's --host)");
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
            # The contact points are exact endpoints: several nodes on one host differ by port only. A fixed list forms a
            # cluster once the required majority answers (not all of it: a machine gone for good would block it for ever).
            akka.management.cluster.bootstrap.contact-point.filter-on-fallback-port = {{(Method == Config ? "false" : "true")}}
            akka.management.cluster.bootstrap.contact-point-discovery.contact-with-all-contact-points = {{(Method == Config ? "false" : "true")}}
            akka.discovery.config.services.{{Quote(ServiceName)}}.endpoints = {{endpoints}}
            """));
    }

    /// <summary>
    /// What a bootstrapping node runs beneath the user's file: keep-majority split-brain resolution, and the Kubernetes
    /// discovery method's own settings (its class; the pod's service-account files; pods selected by <c>app={0}</c>,
    /// {0} the service name), which a file may change.
    /// </summary>
    public static Akka.Configuration.Config Defaults { get; } = ConfigurationFactory.ParseString("akka.cluster.split-brain-resolver.active-strategy = keep-majority")
        .WithFallback(Akka.Discovery.KubernetesApi.KubernetesDiscovery.DefaultConfiguration());

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

        var method = config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.discovery-method");
        if (method == "kubernetes-api" && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(config.GetString("akka.discovery.kubernetes-api.api-service-host-env-name"))))
        {
            throw new InvalidInputException($"--discovery kubernetes: not in a Kubernetes pod ({config.GetString("akka.discovery.kubernetes-api.api-service-host-env-name")} is not set); outside Kubernetes use --discovery config or --join");
        }

        try
        {
            Akka.Discovery.Discovery.Get(system).LoadServiceDiscovery(method);
        }
        catch (Exception e) when (e is ArgumentException or Akka.Configuration.ConfigurationException or InvalidOperationException)
        {
            throw new InvalidInputException($"--discovery {config.GetString(MethodKey)}: the discovery method {method} does not load: {e.GetBaseException().Message}", e);
        }

        ClusterBootstrap bootstrap;
        try
        {
            bootstrap = ClusterBootstrap.Get(system);
        }
        catch (Akka.Configuration.ConfigurationException e)
        {
            throw new InvalidInputException($"--discovery {config.GetString(MethodKey)}: the cluster bootstrap's settings are wrong: {e.GetBaseException().Message}", e);
        }

        var self = new UriBuilder("http", host, port).Uri;
        // Akka.Management's way to tell the bootstrap its own contact point when the routes are served elsewhere.
        bootstrap.Routes(ManagementRouteProviderSettings.Create(self, readOnly: true));
        bootstrap.Start().ContinueWith(
            started => system.Log.Error(started.Exception!.GetBaseException(), "cluster bootstrap did not start: {0}", started.Exception.GetBaseException().Message),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted,
            TaskScheduler.Default);
    }
}
