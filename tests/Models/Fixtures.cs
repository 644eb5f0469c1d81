using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests;

/// <summary>The Hugging Face reference fixtures (tests/fixtures, a copy of shared/fixtures).</summary>
public static class Fixtures
{
    public const double Tolerance = 1e-4;

    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures");

    public static string TinyLanguageModel => Path.Combine(Root, "gpt2-tiny", "lm");

    public static string TinyClassifier => Path.Combine(Root, "gpt2-tiny", "cls");

    public static string ExpectedPath => Path.Combine(Root, "gpt2-tiny", "expected.safetensors");

    private static readonly Lazy<Dictionary<string, Tensor>> ExpectedTensors = new(() =>
    {
        Models.Runtime.LibTorch.Initialize();
        return SafeTensorsFile.ReadAll(ExpectedPath);
    });

    public static Tensor Expected(string name) => ExpectedTensors.Value[name];

    public static double MaxAbsDiff(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var diff = (actual.to(ScalarType.Float64).cpu() - expected.to(ScalarType.Float64).cpu()).abs().max();
        return diff.ToDouble();
    }

    /// <returns>The max |diff|, for the test's output.</returns>
    public static double AssertClose(Tensor expected, Tensor actual, double tolerance = Tolerance)
    {
        var diff = MaxAbsDiff(actual, expected);
        Assert.True(diff <= tolerance, $"max |diff| {diff:E3} > {tolerance:E1}");
        return diff;
    }
}
