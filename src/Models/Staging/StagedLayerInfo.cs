namespace DistributedInference.Models.Staging;

/// <summary>
/// A layer of a staged model as a partitioner sees it: its name, its size, and (0 when unknown) an estimate of the
/// floating-point operations it costs per token.
/// </summary>
public sealed record StagedLayerInfo(string Name, long ParameterCount, long ParameterBytes, long FlopsPerToken = 0)
{
    /// <summary>
    /// The layers as a run in <paramref name="dtype"/> loads them: <see cref="ParameterBytes"/> = parameters x its element
    /// size, whatever dtype the staged view was described in (a bf16 run is planned at bf16 sizes, not the view's fp32).
    /// </summary>
    public static IReadOnlyList<StagedLayerInfo> InDtype(IReadOnlyList<StagedLayerInfo> layers, TorchSharp.torch.ScalarType dtype)
    {
        using var probe = TorchSharp.torch.empty([0], dtype);
        var size = probe.ElementSize;
        return layers.Select(layer => layer with { ParameterBytes = layer.ParameterCount * size }).ToList();
    }
}
