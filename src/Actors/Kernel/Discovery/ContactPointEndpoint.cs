using System.Collections.Immutable;
using System.Net;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Akka.Management.Cluster.Bootstrap.ContactPoint;
using Newtonsoft.Json;

namespace DistributedInference.Actors.Kernel.Discovery;

/// <summary>
/// A node's Cluster Bootstrap contact point: <c>GET /bootstrap/seed-nodes</c> on its management port (plain HTTP,
/// <see cref="HttpListener"/>), answering what Akka.Management's own route answers (its
/// <see cref="HttpBootstrapJsonProtocol.SeedNodes"/>, serialized with Newtonsoft.Json as the probing side reads it):
/// this node's address and the reachable members that are Joining, WeaklyUp or Up, none while this node leaves.
/// Ours because Akka.Management 1.5.73's HTTP server is built on Ceen.Httpd 0.9.9, which the package registry does not
/// serve, and 0.9.10 lacks the method it calls (MissingMethodException at start). Read-only; what it tells is the
/// members' Akka addresses, which anyone who reaches the Akka port learns anyway. Stops with the actor system.
/// </summary>
internal sealed class ContactPointEndpoint
{
    private const int MaximumSeedNodes = 10;
    private readonly ActorSystem _system;
    private readonly HttpListener _listener = new();

    private ContactPointEndpoint(ActorSystem system, string host, int port)
    {
        _system = system;
        var bound = host is "0.0.0.0" or "::" ? "+" : host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host;
        _listener.Prefixes.Add($"http://{bound}:{port}/bootstrap/");
    }

    /// <summary>Listens on <paramref name="host"/>:<paramref name="port"/> until <paramref name="system"/> terminates.</summary>
    /// <exception cref="HttpListenerException">The port cannot be listened on.</exception>
    public static ContactPointEndpoint Start(ActorSystem system, string host, int port)
    {
        var endpoint = new ContactPointEndpoint(system, host, port);
        endpoint._listener.Start();
        system.RegisterOnTermination(endpoint._listener.Close);
        _ = Task.Run(endpoint.ServeAsync);
        return endpoint;
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                Answer(context);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException)
            {
                // The prober went away: its next probe asks again.
            }
        }
    }

    private void Answer(HttpListenerContext context)
    {
        using var response = context.Response;
        if (context.Request.HttpMethod != "GET" || context.Request.Url?.AbsolutePath.TrimEnd('/') != "/bootstrap/seed-nodes")
        {
            response.StatusCode = context.Request.HttpMethod != "GET" ? 405 : 404;
            return;
        }

        var cluster = Akka.Cluster.Cluster.Get(_system);
        var state = cluster.State;
        var members = cluster.SelfMember.Status is MemberStatus.Down or MemberStatus.Exiting or MemberStatus.Leaving or MemberStatus.Removed
            ? ImmutableList<HttpBootstrapJsonProtocol.ClusterMember>.Empty
            : state.Members
                .Where(m => !state.Unreachable.Contains(m) && m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining)
                .Take(MaximumSeedNodes)
                .Select(m => new HttpBootstrapJsonProtocol.ClusterMember(m.UniqueAddress.Address, m.UniqueAddress.Uid, m.Status, m.Roles))
                .ToImmutableList();
        var body = Encoding.UTF8.GetBytes(JsonConvert.SerializeObject(new HttpBootstrapJsonProtocol.SeedNodes(cluster.SelfAddress, members)));
        response.ContentType = "application/json";
        response.ContentLength64 = body.Length;
        response.OutputStream.Write(body);
    }
}
