using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using DistributedInference.Actors.Kernel.Discovery;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel;

/// <summary>
/// How every cluster process starts, below any feature: its configuration is written in one place
/// (<see cref="Configure"/>: where it listens, whom it joins, its roles, the cluster secret and certificate, over the
/// user's file and our defaults), checked (no secret off loopback, ports free), the actor system created with TLS when
/// there is a certificate, and the services every process runs beside Akka's started once: the data plane, the
/// <see cref="MembershipGate"/> and the <see cref="RemovedMemberQuarantine"/>, which drops what remoting keeps for
/// members that left. The node bootstrap (<c>Hosting.NodeBootstrap</c>: <c>di node</c>, clients, host apps)
/// and process groups (<c>di launch -- PROGRAM</c>) both start here.
/// </summary>
public static class NodeServices
{
    /// <summary>The actor system name of every process of a cluster.</summary>
    public const string SystemName = "distributed-inference";

    /// <summary>
    /// A cluster process's configuration: listen on <paramref name="host"/>:<paramref name="port"/> (0: any free port),
    /// join <paramref name="join"/> (host:port each; none: this process starts the cluster) with <paramref name="roles"/>,
    /// the cluster <paramref name="secret"/> and TLS <paramref name="certificate"/> (a PKCS#12 file) when given, over the
    /// user's <paramref name="configFile"/>, the cluster defaults and ours. With a certificate (given, or in the file) Akka
    /// speaks <c>akka.ssl.tcp</c>, and so do the addresses joined. With <paramref name="discovery"/> (and no
    /// <paramref name="join"/>) the process finds its cluster through Cluster Bootstrap instead of seed nodes.
    /// </summary>
    /// <param name="systemName">The cluster's actor system name (the same on every process).</param>
    /// <exception cref="InvalidInputException">A join address that is not host:port; both seed nodes and discovery, or
    /// invalid discovery settings (<see cref="ClusterDiscovery.Validate"/>); a missing or malformed file.</exception>
    public static Config Configure(
        string host,
        int port,
        IEnumerable<string> roles,
        IReadOnlyList<string> join,
        string? secret = null,
        string? certificate = null,
        string? certificatePassword = null,
        string? configFile = null,
        string systemName = SystemName,
        ClusterDiscovery? discovery = null)
    {
        var seeds = join.Select(node => SeedNode.Parse(node, "--join")).ToList();
        discovery?.ValidateFor(host, port, seeds.Count);

        var security = new List<string>();
        if (!string.IsNullOrEmpty(secret))
        {
            security.Add($"distributed-inference.security.secret = {JsonSerializer.Serialize(secret)}");
        }

        if (certificate is not null)
        {
            security.Add($"distributed-inference.security.tls.certificate = {JsonSerializer.Serialize(Path.GetFullPath(certificate))}");
            security.Add($"distributed-inference.security.tls.password = {JsonSerializer.Serialize(certificatePassword ?? string.Empty)}");
        }

        Config Build(bool tls)
        {
            var node = DistributedInferenceConfig.Cluster(host, port, roles, seeds.Select(s => s.Address(systemName, tls)).ToList(), configFile, discovery is null ? null : ClusterDiscovery.Defaults);
            node = discovery is null ? node : discovery.ToConfig(host).WithFallback(node);
            return security.Count == 0 ? node : ConfigurationFactory.ParseString(string.Join(Environment.NewLine, security)).WithFallback(node);
        }

        var config = Build(tls: false);
        return config.GetString("distributed-inference.security.tls.certificate", string.Empty).Length > 0 ? Build(tls: true) : config;
    }

    /// <summary>
    /// Checks the security settings and the ports of <paramref name="config"/> (from <see cref="Configure"/>), then starts the
    /// actor system (TLS with a certificate), its data plane, its removed members' quarantine and its membership gate.
    /// </summary>
    /// <exception cref="InvalidInputException">No secret off loopback, a bad certificate, or a port already in use.</exception>
    public static ActorSystem StartSystem(Config config, string systemName = SystemName)
    {
        var host = config.GetString("akka.remote.dot-netty.tcp.hostname", "127.0.0.1");
        var port = config.GetInt("akka.remote.dot-netty.tcp.port", 0);
        ListenAddress.Resolve(host);
        ClusterSecurity.From(config).RequireSecretOffLoopback(host);
        ListenAddress.RequireFree(host, port, "--port");
        if (ClusterDiscovery.Configured(config))
        {
            ListenAddress.RequireFree(host, config.GetInt("akka.management.http.port"), "--management-port");
        }

        ActorSystem system;
        try
        {
            system = ClusterSecurity.CreateSystem(systemName, config);
        }
        catch (Exception e) when (e is not InvalidInputException && Flatten(e).Any(inner => inner is System.Net.Sockets.SocketException))
        {
            throw new InvalidInputException($"cannot listen on {host}:{port}: {Flatten(e).OfType<System.Net.Sockets.SocketException>().First().Message}", e);
        }

        try
        {
            Start(system);
        }
        catch
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(10));
            throw;
        }

        return system;
    }

    /// <summary>
    /// Starts the data plane, the removed members' quarantine and the membership gate of <paramref name="system"/> (a
    /// cluster node or client), and, when it is configured to find its cluster by discovery, Akka.Management and the
    /// Cluster Bootstrap (<see cref="ClusterDiscovery.Start"/>).
    /// </summary>
    /// <exception cref="InvalidInputException">The security settings are invalid, or the data plane's or management port is taken.</exception>
    public static MembershipGate Start(ActorSystem system)
    {
        TensorDataPlane.For(system);
        RemovedMemberQuarantine.Start(system);
        ClusterMetrics.Track(system);
        var gate = MembershipGate.Start(system);
        if (ClusterDiscovery.Configured(system.Settings.Config))
        {
            ClusterDiscovery.Start(system);
        }

        return gate;
    }

    private static IEnumerable<Exception> Flatten(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            yield return inner;
        }
    }
}
