using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// transformers' sampling warpers, in the order <c>generate</c> applies them (<c>TemperatureLogitsWarper</c>,
/// <c>TopKLogitsWarper</c>, <c>TopPLogitsWarper</c>, min_tokens_to_keep 1): removed tokens get -inf.
/// </summary>
public static class LogitsWarpers
{
    /// <summary>Temperature, then top-k (unless 0), then top-p (unless 1).</summary>
    /// <param name="scores">[B, vocab] float32 logits.</param>
    /// <param name="options">The sampling settings.</param>
    /// <returns>[B, vocab] float32 scores, a new tensor in the caller's dispose scope.</returns>
    public static Tensor Apply(Tensor scores, GenerationOptions options)
    {
        if (options.Temperature != 1.0)
        {
            scores = scores / options.Temperature;
        }

        if (options.TopK > 0)
        {
            scores = TopK(scores, options.TopK);
        }

        if (options.TopP < 1.0)
        {
            scores = TopP(scores, options.TopP);
        }

        return scores;
    }

    /// <summary>Keeps the <paramref name="k"/> highest scores of each row (ties with the k-th kept too).</summary>
    /// <param name="scores">[B, vocab].</param>
    /// <param name="k">At least 1; capped at the vocabulary.</param>
    public static Tensor TopK(Tensor scores, int k)
    {
        k = (int)Math.Min(Math.Max(k, 1), scores.shape[^1]);
        var kth = scores.topk(k, dim: -1).values.narrow(-1, k - 1, 1);
        return scores.masked_fill(scores.lt(kth), float.NegativeInfinity);
    }

    /// <summary>
    /// Keeps the smallest set of most likely tokens whose probabilities reach <paramref name="p"/> (the nucleus):
    /// sorted ascending, tokens whose cumulative probability is &lt;= 1 - p are removed; the most likely token never is.
    /// </summary>
    /// <param name="scores">[B, vocab].</param>
    /// <param name="p">In (0, 1].</param>
    public static Tensor TopP(Tensor scores, double p)
    {
        var (sorted, order) = scores.sort(-1, descending: false);
        var cumulative = sorted.softmax(-1).cumsum(-1);
        var remove = cumulative.le(1 - p);
        remove.narrow(-1, remove.shape[^1] - 1, 1).fill_(false);
        var removeAtToken = remove.scatter(1, order, remove);
        return scores.masked_fill(removeAtToken, float.NegativeInfinity);
    }
}
