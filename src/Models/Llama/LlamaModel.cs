using DistributedInference.Models.Generation;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// The decoder stack (transformers' <c>LlamaModel</c>): <c>embed_tokens</c>, <c>layers</c>, <c>norm</c>. Its
/// forward returns the last hidden state after the final norm.
/// </summary>
public sealed class LlamaModel : nn.Module<Tensor, Tensor>
{
    private readonly TokenEmbedding embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly RmsNorm norm;

    /// <summary>Allocates uninitialised weights on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public LlamaModel(LlamaConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(LlamaModel))
    {
        Config = config;
        Rotary = new RotaryEmbedding(config);
        embed_tokens = new TokenEmbedding(config.VocabSize, config.HiddenSize, device, dtype);
        layers = nn.ModuleList(Enumerable.Range(0, config.LayerCount).Select(i => new LlamaDecoderLayer(config, i, device, dtype)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>The model's config.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The rotary embedding every layer shares.</summary>
    public RotaryEmbedding Rotary { get; }

    /// <summary>The token embedding, [vocab, hidden] (also the head's weight when tied).</summary>
    public Tensor EmbeddingWeight => embed_tokens.Weight;

    /// <summary>Not the entry point: see <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => Forward(input);

    /// <param name="inputIds">[B, T] int64.</param>
    /// <param name="positionIds">[B or 1, T] int64; by default the positions right after what the cache holds.</param>
    /// <param name="attentionMask">[B, past + T], 1 = real token, 0 = padding; null when nothing is padded.</param>
    /// <param name="cache">Keys and values of earlier positions, extended by this call.</param>
    /// <param name="hiddenStates">When given, receives the embedding output and each layer's output (L + 1 tensors, before the final norm).</param>
    /// <returns>[B, T, hidden] after the final norm, in the caller's dispose scope.</returns>
    public Tensor Forward(Tensor inputIds, Tensor? positionIds = null, Tensor? attentionMask = null, KeyValueCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        var steps = inputIds.shape[1];
        var past = cache?.Length ?? 0;
        positionIds ??= arange(past, past + steps, ScalarType.Int64, inputIds.device).unsqueeze(0);
        var hidden = embed_tokens.forward(inputIds);
        hiddenStates?.Add(hidden);
        var (cos, sin) = Rotary.Compute(positionIds, hidden.dtype);
        var mask = LlamaAttentionMask.Create(attentionMask, steps, cache, Config.SlidingWindow, inputIds.device);
        foreach (var layer in layers)
        {
            hidden = layer.Forward(hidden, cos, sin, mask);
            hiddenStates?.Add(hidden);
        }

        cache?.Advance(steps);
        return norm.forward(hidden);
    }

    /// <summary>Rejects ids this config cannot run, before any device work.</summary>
    /// <exception cref="InvalidInputException">Wrong rank or dtype, an id outside [0, vocab), more than max_position_embeddings positions.</exception>
    public static void CheckInput(LlamaConfig config, Tensor inputIds, long extraPositions = 0)
        => Tokenization.TokenIds.Check(inputIds, config.VocabSize, config.MaxPositions, "max_position_embeddings", extraPositions);

    internal IReadOnlyList<LlamaDecoderLayer> Layers => layers.ToList();
}
