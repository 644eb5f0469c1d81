using static TorchSharp.torch;

namespace DistributedInference.Models.Tokenization;

/// <summary>Token-id rows padded to one length, with the attention mask that marks the padding.</summary>
public sealed record TokenBatch(Tensor InputIds, Tensor? AttentionMask)
{
    /// <summary>
    /// Pads rows to the longest one with <paramref name="padId"/>: on the right for scoring (logits, classify), on the
    /// left for generation, so every row's last position is a real token. The mask is null when no row is padded.
    /// </summary>
    public static TokenBatch Pad(IReadOnlyList<IReadOnlyList<int>> rows, long padId, bool padLeft) =>
        Pad(rows.Select(r => (IReadOnlyList<long>)r.Select(id => (long)id).ToList()).ToList(), padId, padLeft);

    /// <inheritdoc cref="Pad(IReadOnlyList{IReadOnlyList{int}}, long, bool)"/>
    public static TokenBatch Pad(IReadOnlyList<IReadOnlyList<long>> rows, long padId, bool padLeft)
    {
        if (rows.Count == 0)
        {
            throw new InvalidInputException("no input rows");
        }

        var empty = rows.Select((r, i) => (r, i)).FirstOrDefault(p => p.r.Count == 0);
        if (empty.r is not null)
        {
            throw new InvalidInputException($"input {empty.i} has no tokens");
        }

        var length = rows.Max(r => r.Count);
        var ids = new long[rows.Count * length];
        var mask = new long[rows.Count * length];
        for (var r = 0; r < rows.Count; r++)
        {
            var offset = padLeft ? length - rows[r].Count : 0;
            for (var t = 0; t < length; t++)
            {
                var inside = t >= offset && t < offset + rows[r].Count;
                ids[(r * length) + t] = inside ? rows[r][t - offset] : padId;
                mask[(r * length) + t] = inside ? 1 : 0;
            }
        }

        var padded = rows.Any(r => r.Count != length);
        return new TokenBatch(
            tensor(ids, [rows.Count, length]),
            padded ? tensor(mask, [rows.Count, length]) : null);
    }
}
