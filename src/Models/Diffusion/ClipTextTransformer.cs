using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// CLIP's text transformer (transformers' <c>CLIPTextTransformer</c>): <c>embeddings</c>, <c>encoder.layers</c>,
/// <c>final_layer_norm</c>.
/// </summary>
public sealed class ClipTextTransformer : nn.Module<Tensor, Tensor>
{
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private readonly LayerNormLayer final_layer_norm;

    public ClipTextTransformer(ClipTextConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(ClipTextTransformer))
    {
        embeddings = new ClipTextEmbeddings(config, device, dtype);
        encoder = new ClipEncoder(config, device, dtype);
        final_layer_norm = new LayerNormLayer(config.HiddenSize, config.LayerNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>Not the entry point: see <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => Forward(input);

    /// <param name="inputIds">[B, T] int64.</param>
    /// <param name="hiddenStates">When given, receives the embeddings and each layer's output (before the final norm).</param>
    /// <returns>last_hidden_state [B, T, hidden], after <c>final_layer_norm</c>.</returns>
    public Tensor Forward(Tensor inputIds, List<Tensor>? hiddenStates = null)
    {
        var hidden = embeddings.forward(inputIds);
        hiddenStates?.Add(hidden);
        foreach (var layer in encoder.Layers)
        {
            hidden = layer.forward(hidden);
            hiddenStates?.Add(hidden);
        }

        return final_layer_norm.forward(hidden);
    }

    /// <summary>The encoder's layer list (<c>encoder.layers</c>).</summary>
    private sealed class ClipEncoder : nn.Module<Tensor, Tensor>
    {
        private readonly ModuleList<ClipEncoderLayer> layers;

        public ClipEncoder(ClipTextConfig config, Device? device, ScalarType dtype)
            : base(nameof(ClipEncoder))
        {
            layers = nn.ModuleList(Enumerable.Range(0, config.LayerCount).Select(_ => new ClipEncoderLayer(config, device, dtype)).ToArray());
            RegisterComponents();
        }

        public IEnumerable<ClipEncoderLayer> Layers => layers;

        public override Tensor forward(Tensor input) => layers.Aggregate(input, (hidden, layer) => layer.forward(hidden));
    }
}
