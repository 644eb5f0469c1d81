using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// The staged view of a GPT-2 language model or classifier: <c>wte+wpe</c>, <c>h.0</c> ... <c>h.N-1</c>,
/// <c>ln_f+head</c>. Built from a model it borrows, or loaded with <see cref="Load"/>, which it then owns.
/// </summary>
public sealed class Gpt2StagedModel : IStagedModel, IDisposable
{
    private nn.Module? _owned;

    private readonly Gpt2Model _transformer;
    private readonly Gpt2LMHeadModel? _languageModel;
    private readonly Gpt2ForSequenceClassification? _classifier;

    public Gpt2StagedModel(Gpt2LMHeadModel languageModel)
    {
        _languageModel = languageModel;
        _transformer = languageModel.Transformer;
        Layers = Describe();
    }

    public Gpt2StagedModel(Gpt2ForSequenceClassification classifier)
    {
        _classifier = classifier;
        _transformer = classifier.Transformer;
        Layers = Describe();
    }

    public IReadOnlyList<StagedLayerInfo> Layers { get; }

    /// <summary>The task's model (classifier for classify, language model otherwise) on the CPU in float32: stages copy from it.</summary>
    public static Gpt2StagedModel Load(Gpt2Source source, Tasks.InferenceTask task)
    {
        if (task == Tasks.InferenceTask.Classify)
        {
            var classifier = source.CreateClassifier(CPU, ScalarType.Float32);
            return new Gpt2StagedModel(classifier) { _owned = classifier };
        }

        var languageModel = source.CreateLanguageModel(CPU, ScalarType.Float32);
        return new Gpt2StagedModel(languageModel) { _owned = languageModel };
    }

    public void Dispose()
    {
        _owned?.Dispose();
        _owned = null;
    }

    private Gpt2Config Config => _transformer.Config;

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
        if (index == 0)
        {
            var embedding = new Gpt2EmbeddingLayer(Config);
            return CopyFrom(embedding, [("wte.weight", _transformer.TokenEmbedding.weight!), ("wpe.weight", _transformer.PositionEmbedding.weight!)], device, dtype);
        }

        if (index <= Config.LayerCount)
        {
            return ModuleCopy.Into(_transformer.Blocks[index - 1], new Gpt2BlockLayer(index - 1, Config), device, dtype, prefix: "block.");
        }

        var norm = new[] { ("ln_f.weight", _transformer.FinalNorm.weight!), ("ln_f.bias", _transformer.FinalNorm.bias!) };
        if (_languageModel is not null)
        {
            return CopyFrom(new Gpt2LanguageHeadLayer(Config), [.. norm, ("weight", _languageModel.HeadWeight)], device, dtype);
        }

        return CopyFrom(new Gpt2ClassifierHeadLayer(Config), [.. norm, ("score.weight", _classifier!.Score.weight!)], device, dtype);
    }

    private static StageLayer CopyFrom(StageLayer layer, (string Name, Tensor Value)[] sources, Device device, ScalarType dtype) =>
        ModuleCopy.Into(sources.ToDictionary(s => s.Name, s => s.Value), layer, device, dtype);

    private List<StagedLayerInfo> Describe()
    {
        var bytesPerElement = _transformer.TokenEmbedding.weight!.ElementSize;
        // FLOPs per token: two per weight of every matrix a token is multiplied by (embeddings are lookups, and the
        // attention scores' share, which grows with the sequence, is left out).
        StagedLayerInfo Info(string name, IEnumerable<Tensor> tensors, long multiplied)
        {
            var count = tensors.Sum(t => t.NumberOfElements);
            return new StagedLayerInfo(name, count, count * bytesPerElement, 2 * multiplied);
        }

        var layers = new List<StagedLayerInfo>
        {
            Info("wte+wpe", [_transformer.TokenEmbedding.weight!, _transformer.PositionEmbedding.weight!], 0),
        };
        layers.AddRange(_transformer.Blocks.Select((block, i) =>
            Info($"h.{i}", block.parameters(), block.parameters().Where(p => p.dim() == 2).Sum(p => p.NumberOfElements))));
        var head = _languageModel is not null ? _languageModel.HeadWeight : _classifier!.Score.weight!;
        // The classifier's head runs once per row, not per token.
        layers.Add(Info("ln_f+head", [_transformer.FinalNorm.weight!, _transformer.FinalNorm.bias!, head], _languageModel is not null ? head.NumberOfElements : 0));
        return layers;
    }
}
