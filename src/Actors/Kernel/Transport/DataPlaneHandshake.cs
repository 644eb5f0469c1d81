using System.Buffers.Binary;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>
/// The data plane's mutual challenge-response, run on every connection before its first frame: HMAC-SHA256 over the
/// cluster secret, both sides proving they know it, the connecting side first. The client sends a hello (magic,
/// version, a 32-byte nonce from <see cref="RandomNumberGenerator"/>, its Akka address and data-plane endpoint); the
/// server answers with its own nonce and its Akka address only; the client sends its proof; only when that checks out
/// does the server send its proof, which the client checks. So a peer that does not know the secret never gets an HMAC
/// from the accepting side to guess the secret against offline. Each proof is the HMAC of a role label and the whole
/// transcript (both nonces, both addresses, the client's endpoint), so it cannot be replayed, reflected or moved to
/// another pair of nodes; proofs are compared in constant time. Every field has a small fixed bound, so a peer that
/// has not proved anything costs at most a few hundred bytes.
/// </summary>
internal static class DataPlaneHandshake
{
    public const int NonceSize = 32;
    public const int MaximumAddressBytes = 512;
    private const byte Version = 2;
    private static readonly byte[] Magic = "DIDP"u8.ToArray();
    private static readonly byte[] ServerLabel = "distributed-inference data plane server v1"u8.ToArray();
    private static readonly byte[] ClientLabel = "distributed-inference data plane client v1"u8.ToArray();

    /// <summary>
    /// The connecting side: proves itself as <paramref name="self"/> (Akka address) with data plane at
    /// <paramref name="selfEndpoint"/>, and returns the Akka address the server proved.
    /// </summary>
    /// <exception cref="AuthenticationException">The server's proof is wrong (another secret, or not a data plane).</exception>
    public static async Task<string> ConnectAsync(Stream stream, byte[] secret, string self, string selfEndpoint, CancellationToken cancellation)
    {
        var clientNonce = RandomNumberGenerator.GetBytes(NonceSize);
        using (var hello = new MemoryStream())
        {
            hello.Write(Magic);
            hello.WriteByte(Version);
            hello.Write(clientNonce);
            WriteField(hello, self);
            WriteField(hello, selfEndpoint);
            await stream.WriteAsync(hello.ToArray(), cancellation);
            await stream.FlushAsync(cancellation);
        }

        await ExpectMagicAsync(stream, cancellation);
        var serverNonce = await ReadExactlyAsync(stream, NonceSize, cancellation);
        var server = await ReadFieldAsync(stream, cancellation);
        var transcript = Transcript(clientNonce, serverNonce, self, selfEndpoint, server);
        await stream.WriteAsync(Proof(secret, ClientLabel, transcript), cancellation);
        await stream.FlushAsync(cancellation);
        byte[] serverProof;
        try
        {
            serverProof = await ReadExactlyAsync(stream, HMACSHA256.HashSizeInBytes, cancellation);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            throw new AuthenticationException("the node there refused this node's proof: it has another cluster secret", e);
        }

        if (!CryptographicOperations.FixedTimeEquals(serverProof, Proof(secret, ServerLabel, transcript)))
        {
            throw new AuthenticationException("the data plane there does not know this cluster's secret");
        }

        return server;
    }

    /// <summary>
    /// The accepting side, as <paramref name="self"/> (Akka address): returns the client's proved Akka address and
    /// data-plane endpoint. Nothing the client sends is trusted before its proof checks out.
    /// </summary>
    /// <exception cref="AuthenticationException">Not a data-plane hello, or a wrong proof.</exception>
    public static async Task<(string Address, string Endpoint)> AcceptAsync(Stream stream, byte[] secret, string self, CancellationToken cancellation)
    {
        await ExpectMagicAsync(stream, cancellation);
        var clientNonce = await ReadExactlyAsync(stream, NonceSize, cancellation);
        var client = await ReadFieldAsync(stream, cancellation);
        var clientEndpoint = await ReadFieldAsync(stream, cancellation);
        var serverNonce = RandomNumberGenerator.GetBytes(NonceSize);
        var transcript = Transcript(clientNonce, serverNonce, client, clientEndpoint, self);
        using (var answer = new MemoryStream())
        {
            answer.Write(Magic);
            answer.WriteByte(Version);
            answer.Write(serverNonce);
            WriteField(answer, self);
            await stream.WriteAsync(answer.ToArray(), cancellation);
            await stream.FlushAsync(cancellation);
        }

        // The client proves itself first; the server's proof goes only to a client that knows the secret.
        var clientProof = await ReadExactlyAsync(stream, HMACSHA256.HashSizeInBytes, cancellation);
        if (!CryptographicOperations.FixedTimeEquals(clientProof, Proof(secret, ClientLabel, transcript)))
        {
            throw new AuthenticationException("wrong proof of the cluster secret");
        }

        await stream.WriteAsync(Proof(secret, ServerLabel, transcript), cancellation);
        await stream.FlushAsync(cancellation);
        return (client, clientEndpoint);
    }

    internal static byte[] Proof(byte[] secret, byte[] label, byte[] transcript)
    {
        using var hmac = new HMACSHA256(secret);
        hmac.TransformBlock(label, 0, label.Length, null, 0);
        hmac.TransformFinalBlock(transcript, 0, transcript.Length);
        return hmac.Hash!;
    }

    private static byte[] Transcript(byte[] clientNonce, byte[] serverNonce, string client, string clientEndpoint, string server)
    {
        using var transcript = new MemoryStream();
        transcript.Write(clientNonce);
        transcript.Write(serverNonce);
        WriteField(transcript, client);
        WriteField(transcript, clientEndpoint);
        WriteField(transcript, server);
        return transcript.ToArray();
    }

    private static void WriteField(Stream stream, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length > MaximumAddressBytes)
        {
            throw new ArgumentException($"address of {bytes.Length} bytes (at most {MaximumAddressBytes})", nameof(text));
        }

        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)bytes.Length);
        stream.Write(length);
        stream.Write(bytes);
    }

    private static async Task<string> ReadFieldAsync(Stream stream, CancellationToken cancellation)
    {
        var length = BinaryPrimitives.ReadUInt16LittleEndian(await ReadExactlyAsync(stream, 2, cancellation));
        if (length > MaximumAddressBytes)
        {
            throw new AuthenticationException($"handshake field of {length} bytes (at most {MaximumAddressBytes})");
        }

        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(await ReadExactlyAsync(stream, length, cancellation));
        }
        catch (DecoderFallbackException e)
        {
            throw new AuthenticationException("handshake field is not UTF-8", e);
        }
    }

    private static async Task ExpectMagicAsync(Stream stream, CancellationToken cancellation)
    {
        var head = await ReadExactlyAsync(stream, Magic.Length + 1, cancellation);
        if (!head.AsSpan(0, Magic.Length).SequenceEqual(Magic) || head[^1] != Version)
        {
            throw new AuthenticationException("not a data-plane handshake");
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int count, CancellationToken cancellation)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, cancellation);
        return buffer;
    }
}
