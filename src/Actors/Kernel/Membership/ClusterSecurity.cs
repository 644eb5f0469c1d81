using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>
/// How the nodes of a cluster recognize each other (<c>distributed-inference.security</c>): a shared secret that every
/// data-plane connection proves in an HMAC-SHA256 challenge-response before any frame is read, and optionally one
/// certificate (a PKCS#12 file) that Akka.Remote and the data plane use for mutual TLS, each side accepting only that
/// same certificate. <see cref="CreateSystem"/> starts an actor system with both applied.
/// </summary>
public sealed class ClusterSecurity
{
    /// <summary>The environment variable <c>di</c> reads the cluster secret from when no <c>--secret-file</c> is given.</summary>
    public const string SecretVariable = "DI_CLUSTER_SECRET";

    /// <summary>
    /// The fewest characters a secret may have: 32 (16 bytes as hex; <c>di secret</c> makes 43 characters of base64url,
    /// 32 random bytes), so that guessing it offline from a captured proof is out of reach.
    /// </summary>
    public const int MinimumSecretLength = 32;

    /// <summary>The one-line advice a node without a secret on a non-loopback address gives.</summary>
    public const string HowToMakeASecret = "make one with `di secret > cluster.secret` and give every node and client --secret-file cluster.secret (or set DI_CLUSTER_SECRET)";

    private ClusterSecurity(byte[] secret, X509Certificate2? certificate)
    {
        Secret = secret;
        Certificate = certificate;
    }

    /// <summary>The HMAC key of the data-plane handshake (UTF-8 of the configured secret); empty when none is set (loopback only).</summary>
    public byte[] Secret { get; }

    /// <summary>Whether a secret is set.</summary>
    public bool HasSecret => Secret.Length > 0;

    /// <summary>The cluster certificate with its private key, or null when TLS is off.</summary>
    public X509Certificate2? Certificate { get; }

    /// <summary>A new random secret: 32 bytes from <see cref="RandomNumberGenerator"/>, base64url without padding (43 characters).</summary>
    public static string NewSecret() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Reads <c>distributed-inference.security</c>: <c>secret</c> and <c>tls.certificate</c>/<c>tls.password</c>.</summary>
    /// <exception cref="InvalidInputException">A secret shorter than <see cref="MinimumSecretLength"/>; the certificate file is missing, unreadable, or has no private key.</exception>
    public static ClusterSecurity From(Config config)
    {
        var secret = config.GetString("distributed-inference.security.secret", string.Empty).Trim();
        if (secret.Length is > 0 and < MinimumSecretLength)
        {
            throw new InvalidInputException($"the cluster secret has {secret.Length} characters, at least {MinimumSecretLength} are needed: {HowToMakeASecret}");
        }

        var path = config.GetString("distributed-inference.security.tls.certificate", string.Empty);
        X509Certificate2? certificate = null;
        if (!string.IsNullOrEmpty(path))
        {
            if (!File.Exists(path))
            {
                throw new InvalidInputException($"distributed-inference.security.tls.certificate {path}: no such file");
            }

            try
            {
                certificate = X509CertificateLoader.LoadPkcs12FromFile(path, config.GetString("distributed-inference.security.tls.password", string.Empty));
            }
            catch (CryptographicException e)
            {
                throw new InvalidInputException($"distributed-inference.security.tls.certificate {path}: not a PKCS#12 certificate or wrong password ({e.Message})", e);
            }

            if (!certificate.HasPrivateKey)
            {
                throw new InvalidInputException($"distributed-inference.security.tls.certificate {path}: has no private key");
            }
        }

        return new ClusterSecurity(Encoding.UTF8.GetBytes(secret), certificate);
    }

    /// <summary>
    /// Refuses a node that listens on a non-loopback address without a secret: anyone who can reach its data-plane
    /// port could otherwise pass the handshake.
    /// </summary>
    /// <exception cref="InvalidInputException">No secret and <paramref name="host"/> is not a loopback address.</exception>
    public void RequireSecretOffLoopback(string host)
    {
        if (!HasSecret && !IsLoopback(host))
        {
            throw new InvalidInputException($"{host} is not a loopback address and this node has no cluster secret: {HowToMakeASecret}");
        }
    }

    /// <summary>Whether <paramref name="host"/> is <c>localhost</c> or a loopback IP address.</summary>
    public static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));

    /// <summary>Whether <paramref name="certificate"/> is the cluster's own certificate (same bytes): the only one either side accepts.</summary>
    public bool IsClusterCertificate(X509Certificate? certificate) =>
        Certificate is not null && certificate is not null && CryptographicOperations.FixedTimeEquals(certificate.GetRawCertData(), Certificate.RawData);

    /// <summary>
    /// An actor system with <paramref name="config"/>; with a certificate, Akka.Remote's DotNetty transport runs TLS
    /// with mutual authentication, accepting only peers that present the cluster certificate (<see cref="Tls"/>).
    /// </summary>
    public static ActorSystem CreateSystem(string name, Config config)
    {
        var tls = From(config).Tls();
        return tls is null ? ActorSystem.Create(name, config) : ActorSystem.Create(name, BootstrapSetup.Create().WithConfig(tls.Value.Config.WithFallback(config)).And(tls.Value.Setup));
    }

    /// <summary>
    /// What Akka.Remote needs to run mutual TLS with the cluster certificate (the configuration that turns it on, and the
    /// setup that holds the certificate and accepts only peers presenting the same); null without a certificate.
    /// </summary>
    public (Config Config, DotNettySslSetup Setup)? Tls()
    {
        if (Certificate is null)
        {
            return null;
        }

        var setup = new DotNettySslSetup(
            Certificate,
            suppressValidation: false,
            requireMutualAuthentication: true,
            customValidator: (certificate, _, _, _, _) => IsClusterCertificate(certificate));
        return (ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = on"), setup);
    }

    /// <summary>
    /// A self-signed certificate (ECDSA P-256, valid for <paramref name="validFor"/>) for a cluster's nodes to share,
    /// as PKCS#12 bytes protected by <paramref name="password"/>; <c>di cert</c> writes one.
    /// </summary>
    public static byte[] NewSelfSignedCertificate(string password, TimeSpan validFor, string subject = "CN=distributed-inference cluster")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.Add(validFor));
        return certificate.Export(X509ContentType.Pkcs12, password);
    }
}
