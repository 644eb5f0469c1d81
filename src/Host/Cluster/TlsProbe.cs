using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Kernel.Membership;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// Why a node or client could not join, when it is TLS: a TLS handshake of its own with each seed, presenting this
/// process's certificate and reading the seed's, tells apart a seed with another certificate, one that refuses this
/// certificate, one that runs TLS where this process does not, and one where nothing listens. Akka.Remote only logs a
/// failed handshake and retries, so without this the join ends in "is a di node listening there?".
/// </summary>
public static class TlsProbe
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(3);

    /// <summary>The first seed's certificate trouble in one sentence, or null when the probe finds none.</summary>
    /// <param name="seeds">host:port of each seed.</param>
    /// <param name="security">This process's secret and certificate (none: this process runs without TLS).</param>
    public static async Task<string?> DiagnoseAsync(IReadOnlyList<string> seeds, ClusterSecurity security)
    {
        foreach (var seed in seeds)
        {
            if (await DiagnoseAsync(seed, security.Certificate) is { } reason)
            {
                return reason;
            }
        }

        return null;
    }

    private static async Task<string?> DiagnoseAsync(string seed, X509Certificate2? ours)
    {
        var (host, port) = SeedNode.Parse(seed, "--join");
        using var client = new TcpClient();
        using var connect = new CancellationTokenSource(Step);
        try
        {
            await client.ConnectAsync(host, port, connect.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return null;
        }

        (byte[] Raw, string Subject)? theirs = null;
        await using var tls = new SslStream(client.GetStream(), leaveInnerStreamOpen: false);
        using var handshake = new CancellationTokenSource(Step);
        try
        {
            await tls.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = host,
                    ClientCertificates = ours is null ? null : [ours],
                    RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    {
                        theirs = certificate is null ? null : (certificate.GetRawCertData(), certificate.Subject);
                        return true;
                    },
                },
                handshake.Token);
        }
        catch (Exception) when (theirs is null)
        {
            // No certificate came back: the seed does not run TLS (a plain Akka.Remote port), or it is not a di node.
            return ours is null ? null : $"{seed} did not answer a TLS handshake: it runs without TLS (or is not a di node), while this process has --tls-certificate";
        }
        catch (Exception)
        {
            // The seed sent its certificate, then broke off: it refused ours.
        }

        if (ours is null)
        {
            return $"{seed} runs TLS (its certificate: {Describe(theirs!.Value)}): give this process --tls-certificate with the cluster's certificate";
        }

        if (!CryptographicOperations.FixedTimeEquals(theirs!.Value.Raw, ours.RawData))
        {
            return $"{seed} presents another TLS certificate ({Describe(theirs.Value)}) than this process's --tls-certificate ({Describe((ours.RawData, ours.Subject))}): every node and client needs the same certificate (di cert makes one)";
        }

        return null;
    }

    private static string Describe((byte[] Raw, string Subject) certificate) =>
        $"{certificate.Subject}, SHA-256 {Convert.ToHexString(SHA256.HashData(certificate.Raw))[..16]}...";
}
