using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Models;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// A <c>di</c> node's or client's security at start: its secret and certificate layered over the configuration; no
/// secret off loopback is refused; a taken port is refused before Akka or the data plane could listen beside another
/// node; the data plane is started at once, so its port is checked at start too; so is the <see cref="MembershipGate"/>,
/// which makes every member prove the cluster secret when it joins.
/// </summary>
public static class NodeSecurity
{
    /// <summary>The environment variable holding the password of <c>--tls-certificate</c> (none: no password).</summary>
    public const string TlsPasswordVariable = "DI_TLS_PASSWORD";

    /// <summary><paramref name="config"/> with the options' secret and certificate (when given) over it.</summary>
    public static Config Apply(Config config, NodeOptions options)
    {
        var lines = new List<string>();
        if (options.Secret is not null)
        {
            lines.Add($"distributed-inference.security.secret = {JsonSerializer.Serialize(options.Secret)}");
        }

        if (options.TlsCertificate is not null)
        {
            lines.Add($"distributed-inference.security.tls.certificate = {JsonSerializer.Serialize(Path.GetFullPath(options.TlsCertificate))}");
            lines.Add($"distributed-inference.security.tls.password = {JsonSerializer.Serialize(Environment.GetEnvironmentVariable(TlsPasswordVariable) ?? string.Empty)}");
        }

        return lines.Count == 0 ? config : ConfigurationFactory.ParseString(string.Join(Environment.NewLine, lines)).WithFallback(config);
    }

    /// <summary>Checks the security settings and the ports, then starts the actor system and its data plane.</summary>
    /// <exception cref="InvalidInputException">No secret off loopback, a bad certificate, or a port already in use.</exception>
    public static ActorSystem StartSystem(string name, string host, int port, Config config)
    {
        ClusterSecurity.From(config).RequireSecretOffLoopback(host);
        ListenAddress.RequireFree(host, port, "--port");
        ActorSystem system;
        try
        {
            system = ClusterSecurity.CreateSystem(name, config);
        }
        catch (Exception e) when (e is not InvalidInputException && Flatten(e).Any(inner => inner is System.Net.Sockets.SocketException))
        {
            throw new InvalidInputException($"cannot listen on {host}:{port}: {Flatten(e).OfType<System.Net.Sockets.SocketException>().First().Message}", e);
        }

        try
        {
            Actors.Kernel.NodeServices.Start(system);
        }
        catch
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(10));
            throw;
        }

        return system;
    }

    private static IEnumerable<Exception> Flatten(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            yield return inner;
        }
    }
}
