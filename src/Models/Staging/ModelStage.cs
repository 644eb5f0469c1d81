using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>A contiguous range of a staged model's layers, run in order on one device.</summary>
public sealed class ModelStage : nn.Module<StagedBatch, StagedBatch>
{
    private readonly ModuleList<StageLayer> layers;

    public ModelStage(IEnumerable<StageLayer> stageLayers, Device device)
        : base(nameof(ModelStage))
    {
        layers = nn.ModuleList(stageLayers.ToArray());
        if (layers.Count == 0)
        {
            throw new ArgumentException("a stage needs at least one layer", nameof(stageLayers));
        }

        Device = device;
        RegisterComponents();
    }

    public Device Device { get; }

    /// <summary>
    /// Builds layers [first, first + count) of a staged model with <paramref name="createLayer"/> into a stage in eval
    /// mode; the layers already built are disposed when a later one fails.
    /// </summary>
    /// <param name="layerCount">The staged model's number of layers.</param>
    /// <exception cref="ArgumentOutOfRangeException">The range is not within the layers.</exception>
    public static ModelStage Build(int first, int count, int layerCount, Device device, Func<int, StageLayer> createLayer)
    {
        if (first < 0 || count <= 0 || first + count > layerCount)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"layers [{first}, {first + count}) are not within the model's {layerCount} layers");
        }

        var layers = new List<StageLayer>();
        try
        {
            for (var i = first; i < first + count; i++)
            {
                layers.Add(createLayer(i));
            }

            var stage = new ModelStage(layers, device);
            stage.eval();
            return stage;
        }
        catch
        {
            layers.ForEach(l => l.Dispose());
            throw;
        }
    }

    public IReadOnlyList<string> LayerNames => layers.Select(l => l.LayerName).ToList();

    /// <summary>The stage's layers, in order (owned by the stage).</summary>
    public IReadOnlyList<StageLayer> Layers => layers.ToList();

    public override StagedBatch forward(StagedBatch input) => layers.Aggregate(input, (batch, layer) => layer.forward(batch));

    /// <summary>
    /// Runs the stage without gradients. The returned batch's <see cref="StagedBatch.Hidden"/> is new and owned by
    /// the caller; the ids and mask are the input's own.
    /// </summary>
    public StagedBatch Run(StagedBatch input)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var output = forward(input);
        return output with { Hidden = output.Hidden.MoveToOuterDisposeScope() };
    }
}
