using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>A node to join as users write it (<c>--join host:port</c>): one of the cluster's seed nodes.</summary>
public sealed record SeedNode(string Host, int Port)
{
    /// <param name="option">How the user gave it (<c>--join</c>, <c>Join</c>), for the error.</param>
    public static SeedNode Parse(string text, string option)
    {
        var parts = text.Split(':');
        if (parts.Length != 2 || parts[0].Length == 0 || !int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var port) || port is <= 0 or > 65535)
        {
            throw new InvalidInputException($"{option} {text}: use host:port");
        }

        return new SeedNode(parts[0], port);
    }

    /// <summary>The node's Akka address in a cluster of actor systems named <paramref name="systemName"/>.</summary>
    /// <param name="tls">The cluster's Akka.Remote runs TLS: its addresses use the <c>akka.ssl.tcp</c> protocol.</param>
    public string Address(string systemName, bool tls = false) => $"{(tls ? "akka.ssl.tcp" : "akka.tcp")}://{systemName}@{Host}:{Port}";
}
