using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>
/// A model seen as an ordered list of named layers (for GPT-2: <c>wte+wpe</c>, <c>h.0</c> ... <c>h.N-1</c>,
/// <c>ln_f+head</c>), any contiguous range of which can run alone on its own device: what a pipeline cuts.
/// </summary>
public interface IStagedModel
{
    IReadOnlyList<StagedLayerInfo> Layers { get; }

    /// <summary>
    /// A standalone copy of layers [first, first + count) on <paramref name="device"/> in <paramref name="dtype"/>;
    /// it shares no tensor with the model, so stages can live on different devices.
    /// </summary>
    ModelStage CreateStage(int first, int count, Device device, ScalarType dtype);
}
