using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests;

/// <summary>The Hugging Face gpt2-tiny reference fixture (tests/fixtures, a copy of shared/fixtures).</summary>
public static class Fixtures
{
    public static string Path(params string[] parts) => System.IO.Path.Combine([AppContext.BaseDirectory, "fixtures", "gpt2-tiny", .. parts]);

    public static Tensor Expected(string name) => SafeTensorsFile.Open(Path("expected.safetensors")).Read(name);

    public static double MaxAbsDiff(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        return (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().ToDouble();
    }
}
