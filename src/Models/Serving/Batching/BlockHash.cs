using System.Buffers.Binary;
using System.Security.Cryptography;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// The identity of a full block of tokens in the prefix cache: a hash of the block's token ids chained to the hash of
/// the block before it, so equal hashes mean equal prefixes from the first token on (vLLM's <c>hash_block_tokens</c>).
/// SHA-256 truncated to 128 bits: a collision would hand one request another's keys and values, so no fast 64-bit hash.
/// </summary>
public readonly record struct BlockHash(UInt128 Value)
{
    /// <summary>The hashes of the first <paramref name="fullBlocks"/> full blocks of <paramref name="tokens"/>.</summary>
    /// <param name="tokens">Token ids, at least <paramref name="fullBlocks"/> x <paramref name="blockSize"/> of them.</param>
    /// <param name="blockSize">Tokens per block.</param>
    /// <param name="fullBlocks">Blocks to hash.</param>
    /// <param name="known">Hashes already computed for the first blocks (reused, not recomputed).</param>
    public static List<BlockHash> Chain(IReadOnlyList<long> tokens, int blockSize, int fullBlocks, IReadOnlyList<BlockHash>? known = null)
    {
        var hashes = new List<BlockHash>(fullBlocks);
        var buffer = new byte[16 + (8 * blockSize)];
        Span<byte> digest = stackalloc byte[32];
        for (var b = 0; b < fullBlocks; b++)
        {
            if (known is not null && b < known.Count)
            {
                hashes.Add(known[b]);
                continue;
            }

            var parent = b == 0 ? UInt128.Zero : hashes[b - 1].Value;
            BinaryPrimitives.WriteUInt128LittleEndian(buffer, parent);
            for (var i = 0; i < blockSize; i++)
            {
                BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(16 + (8 * i)), tokens[(b * blockSize) + i]);
            }

            SHA256.HashData(buffer, digest);
            hashes.Add(new BlockHash(BinaryPrimitives.ReadUInt128LittleEndian(digest)));
        }

        return hashes;
    }
}
