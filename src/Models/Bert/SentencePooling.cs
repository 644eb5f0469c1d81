using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// sentence-transformers' <c>Pooling</c> module: token embeddings [B, T, D] and the attention mask to one vector a row.
/// With several modes the results are concatenated in sentence-transformers' order: cls, max, mean, mean_sqrt_len,
/// lasttoken (so the output is [B, modes x D]).
/// </summary>
public sealed record SentencePooling
{
    /// <summary><c>pooling_mode_cls_token</c>: the first token's embedding.</summary>
    public bool ClsToken { get; init; }

    /// <summary><c>pooling_mode_max_tokens</c>: element-wise maximum over tokens (padding excluded).</summary>
    public bool MaxTokens { get; init; }

    /// <summary><c>pooling_mode_mean_tokens</c>: mean over tokens (padding excluded).</summary>
    public bool MeanTokens { get; init; }

    /// <summary><c>pooling_mode_mean_sqrt_len_tokens</c>: sum over tokens divided by sqrt(token count).</summary>
    public bool MeanSqrtLenTokens { get; init; }

    /// <summary><c>pooling_mode_lasttoken</c>: the embedding at each row's last token (last 1 in the mask).</summary>
    public bool LastToken { get; init; }

    /// <summary>Mean pooling, what a plain BERT folder without modules.json gets.</summary>
    public static SentencePooling Mean { get; } = new() { MeanTokens = true };

    /// <summary>[CLS] pooling.</summary>
    public static SentencePooling Cls { get; } = new() { ClsToken = true };

    /// <summary>How many vectors are concatenated: the output width is this times the token embedding width.</summary>
    public int ModeCount => new[] { ClsToken, MaxTokens, MeanTokens, MeanSqrtLenTokens, LastToken }.Count(m => m);

    /// <summary>Pools token embeddings (inside the caller's dispose scope).</summary>
    /// <param name="tokenEmbeddings">[B, T, D] floating point.</param>
    /// <param name="attentionMask">[B, T], 1 for tokens and 0 for padding; null when nothing is padded.</param>
    /// <returns>[B, <see cref="ModeCount"/> x D] in the embeddings' dtype.</returns>
    public Tensor Pool(Tensor tokenEmbeddings, Tensor? attentionMask)
    {
        var (batch, steps) = (tokenEmbeddings.shape[0], tokenEmbeddings.shape[1]);
        var mask = (attentionMask ?? ones(batch, steps, ScalarType.Int64, tokenEmbeddings.device)).to(tokenEmbeddings.dtype).unsqueeze(-1);
        var outputs = new List<Tensor>();
        if (ClsToken)
        {
            outputs.Add(tokenEmbeddings[.., 0]);
        }

        if (MaxTokens)
        {
            outputs.Add(tokenEmbeddings.masked_fill(mask.eq(0), -1e9).max(1).values);
        }

        if (MeanTokens || MeanSqrtLenTokens)
        {
            var sum = (tokenEmbeddings * mask).sum(1);
            var count = mask.sum(1).clamp_min(1e-9);
            if (MeanTokens)
            {
                outputs.Add(sum / count);
            }

            if (MeanSqrtLenTokens)
            {
                outputs.Add(sum / count.sqrt());
            }
        }

        if (LastToken)
        {
            // The last 1 in each row's mask (right or left padding); a row without tokens takes position T-1.
            var flipped = mask.squeeze(-1).flip(1);
            var (values, indices) = flipped.max(1);
            var last = (steps - 1) - where(values.eq(0), full_like(indices, steps - 1), indices);
            var index = last.view(batch, 1, 1).expand(batch, 1, tokenEmbeddings.shape[2]);
            outputs.Add(tokenEmbeddings.gather(1, index).squeeze(1));
        }

        return outputs.Count == 1 ? outputs[0] : cat(outputs, 1);
    }
}
