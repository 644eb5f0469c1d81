using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>One named layer of a staged model, runnable on its own.</summary>
public abstract class StageLayer : nn.Module<StagedBatch, StagedBatch>
{
    protected StageLayer(string layerName)
        : base(layerName)
    {
        LayerName = layerName;
    }

    public string LayerName { get; }
}
