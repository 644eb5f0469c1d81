using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>
/// Any model that is a sequence of named tensor-to-tensor layers, as a staged model: how a host app pipelines its
/// own model. Each layer is given by a factory; one instance of each is built on the CPU as the source of weights,
/// and stages are filled from it.
/// </summary>
public sealed class SequentialStagedModel : IStagedModel
{
    private readonly IReadOnlyList<(string Name, Func<nn.Module<Tensor, Tensor>> Build, nn.Module<Tensor, Tensor> Source)> _layers;

    public SequentialStagedModel(IEnumerable<(string Name, Func<nn.Module<Tensor, Tensor>> Build)> layers)
    {
        _layers = layers.Select(l => (l.Name, l.Build, l.Build())).ToList();
        if (_layers.Count == 0)
        {
            throw new ArgumentException("a staged model needs at least one layer", nameof(layers));
        }

        Layers = _layers.Select(l =>
        {
            var parameters = l.Source.parameters().ToList();
            var matrices = parameters.Where(p => p.dim() >= 2).Sum(p => p.NumberOfElements);
            return new StagedLayerInfo(l.Name, parameters.Sum(p => p.NumberOfElements), parameters.Sum(p => p.NumberOfElements * p.ElementSize), 2 * matrices);
        }).ToList();
    }

    public IReadOnlyList<StagedLayerInfo> Layers { get; }

    public ModelStage CreateStage(int first, int count, Device device, ScalarType dtype)
    {
        if (first < 0 || count <= 0 || first + count > _layers.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"layers [{first}, {first + count}) are not within the model's {_layers.Count} layers");
        }

        var layers = _layers.Skip(first).Take(count)
            .Select(l => (StageLayer)new TensorStageLayer(l.Name, ModuleCopy.Into(l.Source, l.Build(), device, dtype)))
            .ToList();
        return new ModelStage(layers, device);
    }

    private sealed class TensorStageLayer : StageLayer
    {
        private readonly nn.Module<Tensor, Tensor> layer;

        public TensorStageLayer(string name, nn.Module<Tensor, Tensor> module)
            : base(name)
        {
            layer = module;
            RegisterComponents();
        }

        public override StagedBatch forward(StagedBatch input) => input with { Hidden = layer.forward(input.Hidden) };
    }
}
