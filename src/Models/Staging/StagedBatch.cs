using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>
/// What flows from one layer of a staged model to the next. <see cref="Hidden"/> is the activation (the token ids
/// themselves before the first layer, the model's output after the last); <see cref="InputIds"/> and
/// <see cref="AttentionMask"/> ([B, T], 1 = token, 0 = padding, null = no padding) travel along unchanged, since
/// attention and some heads need them.
/// </summary>
public sealed record StagedBatch(Tensor Hidden, Tensor InputIds, Tensor? AttentionMask)
{
    /// <summary>The batch a staged model's first layer takes.</summary>
    public static StagedBatch FromTokens(Tensor inputIds, Tensor? attentionMask = null) => new(inputIds, inputIds, attentionMask);
}
