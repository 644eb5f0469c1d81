using DistributedInference.Models.Loading;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// The staged view of a GPT-2 checkpoint folder that loads nothing up front: layers are sized from config.json alone,
/// and each stage builds only its own layers on its device in its dtype and reads only their tensors from the
/// checkpoint (straight into them when the stored dtype is the stage's). Built-ins with random weights keep
/// <see cref="Gpt2StagedModel.Load"/>: their initialisation draws every tensor from one generator in name order, so a
/// stage alone could not reproduce its values without drawing the whole model's.
/// </summary>
public sealed class Gpt2CheckpointStagedModel : IStagedModel
{
    private readonly Gpt2Source _source;
    private readonly HuggingFaceCheckpoint _checkpoint;
    private readonly bool _classifier;
    private readonly Dictionary<string, string> _storedName = new(StringComparer.Ordinal);

    /// <param name="source">A folder source (not a built-in).</param>
    /// <param name="task">classify builds the classification head; other tasks the language-model head.</param>
    /// <exception cref="ArgumentException">A built-in source.</exception>
    /// <exception cref="InvalidInputException">Task classify on a folder without score.weight, or a tensor the model needs
    /// is missing or one it does not use is stored (one line naming it).</exception>
    public Gpt2CheckpointStagedModel(Gpt2Source source, Tasks.InferenceTask task)
    {
        _source = source;
        _checkpoint = source.Checkpoint ?? throw new ArgumentException($"{source.Name} is a built-in with random weights: use Gpt2StagedModel.Load", nameof(source));
        _classifier = task == Tasks.InferenceTask.Classify;
        if (_classifier)
        {
            source.RequireClassifierHead();
        }

        // Checkpoint keys with or without the transformer. prefix (older uploads), as Gpt2Weights.Load reads them.
        foreach (var name in _checkpoint.Names)
        {
            _storedName[Gpt2Weights.OurName(name)] = name;
        }

        // The whole model's names, checked before any stage reads: a layer more or less than config.json says is refused
        // here, as a whole-model load refuses it.
        var tied = source.Config.TieWordEmbeddings || !_checkpoint.Contains("lm_head.weight");
        var names = Gpt2Weights.ParameterNames(source.Config, _classifier, tied);
        var missing = names.Order(StringComparer.Ordinal).FirstOrDefault(n => !_storedName.ContainsKey(n));
        if (missing is not null)
        {
            throw new InvalidInputException($"{_checkpoint.Directory}: checkpoint has no tensor for {missing}");
        }

        Gpt2Weights.RejectUnused(_checkpoint, names, _classifier);

        Layers = Describe(source.Config, _classifier);
    }

    /// <inheritdoc/>
    public IReadOnlyList<StagedLayerInfo> Layers { get; }

    /// <inheritdoc/>
    /// <exception cref="ArgumentOutOfRangeException">The range is not within the layers.</exception>
    /// <exception cref="InvalidInputException">A tensor of the range is missing or wrongly shaped in the checkpoint.</exception>
    public ModelStage CreateStage(int first, int count, Device device, ScalarType dtype) =>
        ModelStage.Build(first, count, Layers.Count, device, i => CreateLayer(i, device, dtype));

    private StageLayer CreateLayer(int index, Device device, ScalarType dtype)
    {
        var config = _source.Config;
        var tied = config.TieWordEmbeddings || !_checkpoint.Contains("lm_head.weight");
        var (layer, ourName) = index switch
        {
            0 => ((StageLayer)new Gpt2EmbeddingLayer(config), (Func<string, string>)(name => "transformer." + name)),
            _ when index <= config.LayerCount => (new Gpt2BlockLayer(index - 1, config), name => $"transformer.h.{index - 1}.{name["block.".Length..]}"),
            _ when _classifier => (new Gpt2ClassifierHeadLayer(config), name => name.StartsWith("score.", StringComparison.Ordinal) ? name : "transformer." + name),
            _ => (new Gpt2LanguageHeadLayer(config), name => name == "weight" ? (tied ? "transformer.wte.weight" : "lm_head.weight") : "transformer." + name),
        };
        try
        {
            layer.to(dtype).to(device);
            using var noGrad = no_grad();
            foreach (var (name, parameter) in layer.named_parameters())
            {
                var ours = ourName(name);
                if (!_storedName.TryGetValue(ours, out var stored))
                {
                    throw new InvalidInputException($"{_checkpoint.Directory}: checkpoint has no tensor for {ours}");
                }

                var shape = _checkpoint.ShapeOf(stored);
                if (!shape.SequenceEqual(parameter.shape))
                {
                    throw new InvalidInputException($"{_checkpoint.Directory}: {stored} is [{string.Join(", ", shape)}] but the config needs [{string.Join(", ", parameter.shape)}]");
                }

                _checkpoint.ReadInto(stored, parameter);
            }

            return layer;
        }
        catch
        {
            layer.Dispose();
            throw;
        }
    }

    // Sizes from the config (float32, as the whole-model view counts them); FLOPs: two per weight of every matrix a token is multiplied by.
    private static List<StagedLayerInfo> Describe(Gpt2Config c, bool classifier)
    {
        long e = c.EmbeddingSize, inner = c.InnerSize;
        StagedLayerInfo Info(string name, long count, long matrices) => new(name, count, count * 4, 2 * matrices);
        var matrices = (e * 3 * e) + (e * e) + (e * inner) + (inner * e);
        var block = matrices + (3 * e) + e + inner + e + (4 * e);
        var head = classifier ? (long)c.LabelCount * e : (long)c.VocabSize * e;
        var layers = new List<StagedLayerInfo> { Info("wte+wpe", ((long)c.VocabSize + c.MaxPositions) * e, 0) };
        layers.AddRange(Enumerable.Range(0, c.LayerCount).Select(i => Info($"h.{i}", block, matrices)));
        layers.Add(Info("ln_f+head", (2 * e) + head, classifier ? 0 : head));
        return layers;
    }
}
