using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// The rows a job over token ids splits, as a dictionary every family's replica reads: <c>input_ids</c> [B, T] int64,
/// <c>attention_mask</c> [B, T] (1 = token, 0 = padding; absent when no row is padded), and <c>seed</c> [B] int64, each
/// row's sampling seed (absent: derived from the job's seed and the row's tokens, <see cref="Generation.RowSeeds"/>), so
/// that a row samples the same tokens whichever batch and device it lands on.
/// </summary>
public static class TokenRows
{
    public const string InputIds = "input_ids";
    public const string AttentionMask = "attention_mask";
    public const string Seed = "seed";

    /// <summary>The dictionary of a job's rows; the tensors are referenced, not copied.</summary>
    public static IReadOnlyDictionary<string, object> Of(Tensor inputIds, Tensor? attentionMask, Tensor? seeds = null)
    {
        var rows = new Dictionary<string, object> { [InputIds] = inputIds };
        if (attentionMask is not null)
        {
            rows[AttentionMask] = attentionMask;
        }

        if (seeds is not null)
        {
            rows[Seed] = seeds;
        }

        return rows;
    }

    /// <summary>Reads rows given as an ids tensor alone or as the dictionary of <see cref="Of"/>.</summary>
    /// <exception cref="InvalidInputException">Neither form, or a member that is not a tensor.</exception>
    public static (Tensor InputIds, Tensor? AttentionMask, Tensor? Seeds) Read(object rows, string model) => rows switch
    {
        Tensor ids => (ids, null, null),
        IReadOnlyDictionary<string, object> named when named.TryGetValue(InputIds, out var ids) && ids is Tensor idsTensor =>
            (idsTensor, Optional(named, AttentionMask), Optional(named, Seed)),
        _ => throw new InvalidInputException($"{model} takes a dictionary with {InputIds} (and optionally {AttentionMask}, {Seed}), or an ids tensor"),
    };

    private static Tensor? Optional(IReadOnlyDictionary<string, object> named, string key) =>
        !named.TryGetValue(key, out var value) ? null
        : value as Tensor ?? throw new InvalidInputException($"{key} must be a tensor, got {value?.GetType().Name ?? "null"}");
}
