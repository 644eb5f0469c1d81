using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// The staged view of a BERT sentence embedder: <c>embeddings</c>, <c>encoder.layer.0</c> ... <c>encoder.layer.N-1</c>,
/// <c>pooler</c> (sentence-transformers pooling + optional normalisation, giving [B, hidden]). The
/// <see cref="StagedBatch"/> carries the ids and the attention mask (token types are 0). Built from a model it
/// borrows, or loaded with <see cref="Load"/>, which it then owns.
/// </summary>
public sealed class BertStagedModel : IStagedModel, IDisposable
{
    private readonly BertModel _model;
    private readonly SentenceTransformerConfig _settings;
    private BertModel? _owned;

    /// <param name="model">The source of weights (borrowed: stages copy from it, and it must outlive this view).</param>
    /// <param name="settings">Pooling and normalisation of the last layer.</param>
    public BertStagedModel(BertModel model, SentenceTransformerConfig settings)
    {
        _model = model;
        _settings = settings;
        Layers = Describe();
    }

    /// <summary>Names, sizes and FLOPs per token of the layers, in order.</summary>
    public IReadOnlyList<StagedLayerInfo> Layers { get; }

    /// <summary>The source's model on the CPU in float32, owned by the returned view: stages copy from it.</summary>
    /// <exception cref="InvalidInputException">The source's weights do not load (see <see cref="BertSource.CreateModel"/>).</exception>
    public static BertStagedModel Load(BertSource source)
    {
        var model = source.CreateModel(CPU, ScalarType.Float32);
        return new BertStagedModel(model, source.Sentence) { _owned = model };
    }

    /// <summary>Disposes the model when this view loaded it.</summary>
    public void Dispose()
    {
        _owned?.Dispose();
        _owned = null;
    }

    /// <inheritdoc />
    public ModelStage CreateStage(int first, int count, Device device, ScalarType dtype)
    {
        if (first < 0 || count <= 0 || first + count > Layers.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"layers [{first}, {first + count}) are not within the model's {Layers.Count} layers");
        }

        var layers = Enumerable.Range(first, count).Select(i => CreateLayer(i, device, dtype)).ToList();
        return new ModelStage(layers, device);
    }

    private StageLayer CreateLayer(int index, Device device, ScalarType dtype)
    {
        var config = _model.Config;
        if (index == 0)
        {
            return ModuleCopy.Into(_model.Embeddings, new BertEmbeddingLayer(config), device, dtype, prefix: "embeddings.");
        }

        if (index <= config.LayerCount)
        {
            return ModuleCopy.Into(_model.Layers[index - 1], new BertEncoderLayer(index - 1, config), device, dtype, prefix: "layer.");
        }

        return ModuleCopy.Into(new Dictionary<string, Tensor>(), new BertPoolingLayer(_settings), device, dtype);
    }

    private List<StagedLayerInfo> Describe()
    {
        // FLOPs per token: two per weight of every matrix a token is multiplied by (embeddings are lookups; the
        // attention scores' share, which grows with the sequence, is left out; pooling is negligible).
        static StagedLayerInfo Info(string name, IReadOnlyList<Tensor> tensors, long multiplied) =>
            new(name, tensors.Sum(t => t.NumberOfElements), tensors.Sum(t => t.NumberOfElements * t.ElementSize), 2 * multiplied);

        var layers = new List<StagedLayerInfo> { Info("embeddings", _model.Embeddings.parameters().ToList(), 0) };
        layers.AddRange(_model.Layers.Select((layer, i) =>
        {
            var parameters = layer.parameters().ToList();
            return Info($"encoder.layer.{i}", parameters, parameters.Where(p => p.dim() == 2).Sum(p => p.NumberOfElements));
        }));
        layers.Add(new StagedLayerInfo("pooler", 0, 0, 0));
        return layers;
    }
}
