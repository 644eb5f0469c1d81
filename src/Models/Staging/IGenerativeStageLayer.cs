using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>The cache slot an attention layer needs: its index in the model, key/value heads, head size and dtype.</summary>
public sealed record CacheSlot(int Layer, int Heads, long HeadSize, ScalarType Dtype);

/// <summary>
/// What one step of a layer sees besides its input: the new tokens' positions, the padding mask over past + new
/// positions, and the stage's key/value cache (which the layer extends; the stage advances it after its last layer).
/// </summary>
/// <param name="PositionIds">[B or 1, T] int64, on the layer's device.</param>
/// <param name="AttentionMask">[B, past + T] int64, or null when no row is padded.</param>
/// <param name="Cache">The stage's cache, or null when the stage has no attention layer.</param>
public sealed record GenerationContext(Tensor PositionIds, Tensor? AttentionMask, KeyValueCache? Cache);

/// <summary>
/// A <see cref="StageLayer"/> that can also run one generation step with a key/value cache (a decoder family's layer):
/// what pipelined generation needs of every layer of a stage.
/// </summary>
public interface IGenerativeStageLayer
{
    /// <summary>The layer's cache slot, or null for a layer without attention (embedding, head).</summary>
    CacheSlot? CacheSlot { get; }

    /// <summary>Runs the step's new positions through the layer, in the caller's dispose scope, without gradients.</summary>
    /// <param name="hidden">Token ids [B, T] (the first layer), else the activation [B, T, hidden].</param>
    /// <param name="context">Positions, mask and cache of the step.</param>
    /// <returns>The activation [B, T, hidden]; the head returns the logits [B, vocab] of each row's last position.</returns>
    Tensor Step(Tensor hidden, GenerationContext context);
}
