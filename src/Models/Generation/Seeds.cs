namespace DistributedInference.Models.Generation;

/// <summary>Deterministic seed derivation (SplitMix64 and FNV-1a), the same on every machine and run.</summary>
public static class Seeds
{
    /// <summary>A well-mixed 64-bit seed from two values (a seed and a row index, or a seed and a name hash).</summary>
    public static ulong Mix(ulong seed, ulong value) => SplitMix(SplitMix(seed) ^ value);

    /// <summary>FNV-1a hash of a string's UTF-16 code units.</summary>
    public static ulong Hash(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash;
    }

    /// <summary>FNV-1a hash of token ids (each id's eight bytes, little-endian), the same on every machine.</summary>
    public static ulong Hash(IReadOnlyList<long> ids)
    {
        var hash = 14695981039346656037UL;
        foreach (var id in ids)
        {
            for (var shift = 0; shift < 64; shift += 8)
            {
                hash = (hash ^ ((ulong)id >> shift & 0xFF)) * 1099511628211UL;
            }
        }

        return hash;
    }

    private static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
