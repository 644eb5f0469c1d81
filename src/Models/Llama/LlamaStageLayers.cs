using DistributedInference.Models.Kernels;
using DistributedInference.Models.Staging;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary><c>embed_tokens</c>: token ids to the first hidden state.</summary>
public sealed class LlamaEmbeddingLayer : StageLayer, IGenerativeStageLayer
{
    private readonly TokenEmbedding embed_tokens;

    internal LlamaEmbeddingLayer(LlamaConfig config, Device device, ScalarType dtype)
        : base("embed_tokens")
    {
        embed_tokens = new TokenEmbedding(config.VocabSize, config.HiddenSize, device, dtype);
        RegisterComponents();
    }

    /// <summary>Hidden [B, T, hidden] from the batch's ids.</summary>
    public override StagedBatch forward(StagedBatch input) => input with { Hidden = embed_tokens.forward(input.InputIds) };

    /// <inheritdoc/>
    public CacheSlot? CacheSlot => null;

    /// <summary>Hidden [B, T, hidden] from the step's ids [B, T].</summary>
    public Tensor Step(Tensor hidden, GenerationContext context) => embed_tokens.forward(hidden);
}

/// <summary>
/// <c>layers.i</c>: one decoder layer. It rebuilds positions (arange(T), as transformers' forward) and the causal
/// and padding mask from the batch's ids and mask, so it needs nothing from the stages before it but the hidden state.
/// </summary>
public sealed class LlamaDecoderStageLayer : StageLayer, IGenerativeStageLayer
{
    private readonly LlamaDecoderLayer layer;
    private readonly RotaryEmbedding _rotary;
    private readonly int? _slidingWindow;

    internal LlamaDecoderStageLayer(LlamaConfig config, int index, Device device, ScalarType dtype)
        : base($"layers.{index}")
    {
        layer = new LlamaDecoderLayer(config, index, device, dtype);
        _rotary = new RotaryEmbedding(config);
        _slidingWindow = config.SlidingWindow;
        CacheSlot = new CacheSlot(index, config.KeyValueHeadCount, config.HeadDim, dtype);
        RegisterComponents();
    }

    /// <summary>Hidden [B, T, hidden] after this layer.</summary>
    public override StagedBatch forward(StagedBatch input)
    {
        var hidden = input.Hidden;
        var steps = hidden.shape[1];
        var positions = arange(steps, ScalarType.Int64, hidden.device).unsqueeze(0);
        var (cos, sin) = _rotary.Compute(positions, hidden.dtype);
        var mask = LlamaAttentionMask.Create(input.AttentionMask?.to(hidden.device), steps, null, _slidingWindow, hidden.device);
        return input with { Hidden = layer.Forward(hidden, cos, sin, mask) };
    }

    /// <inheritdoc/>
    public CacheSlot? CacheSlot { get; }

    /// <summary>
    /// Hidden [B, T, hidden] after this layer for the step's new positions, attending to the cached ones (whose
    /// keys and values this layer appends to, at its model index).
    /// </summary>
    public Tensor Step(Tensor hidden, GenerationContext context)
    {
        var (cos, sin) = _rotary.Compute(context.PositionIds, hidden.dtype);
        var mask = LlamaAttentionMask.Create(context.AttentionMask, hidden.shape[1], context.Cache, _slidingWindow, hidden.device);
        return layer.Forward(hidden, cos, sin, mask);
    }
}

/// <summary><c>norm+lm_head</c>: final norm, then logits [B, T, vocab] (the head is a copy of the embedding when tied).</summary>
public sealed class LlamaHeadLayer : StageLayer, IGenerativeStageLayer
{
    private readonly RmsNorm norm;
    private readonly Linear lm_head;

    internal LlamaHeadLayer(LlamaConfig config, Device device, ScalarType dtype)
        : base("norm+lm_head")
    {
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, device, dtype);
        lm_head = LlamaLinear.Create(config.HiddenSize, config.VocabSize, bias: false, device, dtype);
        RegisterComponents();
    }

    /// <summary>Logits [B, T, vocab] in the stage's dtype.</summary>
    public override StagedBatch forward(StagedBatch input) => input with { Hidden = lm_head.Apply(norm.forward(input.Hidden)) };

    /// <inheritdoc/>
    public CacheSlot? CacheSlot => null;

    /// <summary>Logits [B, vocab] of each row's last new position, in the stage's dtype: the norm over every position
    /// first, as <see cref="LlamaForCausalLM.NextTokenLogits"/> does, so the logits are the whole model's to the bit.</summary>
    public Tensor Step(Tensor hidden, GenerationContext context) => lm_head.Apply(norm.forward(hidden).select(1, -1));
}
