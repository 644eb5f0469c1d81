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

    /// <summary>
    /// A copy of the model folder <paramref name="source"/> at <paramref name="destination"/> (its name is the copy's
    /// name); with <paramref name="changeOneWeight"/>, the last float32 of its weights is changed and nothing else: the
    /// same config, header and tensor layout, other weights.
    /// </summary>
    public static string CopyModel(string source, string destination, bool changeOneWeight)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, System.IO.Path.Combine(destination, System.IO.Path.GetFileName(file)));
        }

        if (changeOneWeight)
        {
            using var weights = File.Open(System.IO.Path.Combine(destination, "model.safetensors"), FileMode.Open, FileAccess.ReadWrite);
            var last = new byte[4];
            weights.Seek(-4, SeekOrigin.End);
            weights.ReadExactly(last);
            weights.Seek(-4, SeekOrigin.End);
            weights.Write(BitConverter.GetBytes(BitConverter.ToSingle(last) + 0.5f));
        }

        return destination;
    }

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

    /// <summary>
    /// float32 accumulated in another order (another CPU's SIMD width, another thread count) is off by a few ulps of the
    /// value, and an ulp grows with it: PyTorch's own <c>torch.testing.assert_close</c> allows float32
    /// <c>|actual - expected| &lt;= atol + rtol * |expected|</c> with <c>rtol = 1.3e-6</c>.
    /// </summary>
    public const double Float32RelativeTolerance = 1.3e-6;

    /// <summary>
    /// Asserts <c>|actual - expected| &lt;= tolerance + relative * |expected|</c> at every element (torch.testing.assert_close's
    /// rule); with <paramref name="relative"/> 0 it is <see cref="AssertClose(Tensor, Tensor, double)"/>.
    /// </summary>
    /// <returns>The max |diff|, for the test's output.</returns>
    public static double AssertClose(Tensor expected, Tensor actual, double tolerance, double relative)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var e = expected.to(ScalarType.Float64).cpu();
        var diff = (actual.to(ScalarType.Float64).cpu() - e).abs();
        var excess = (diff - (tolerance + (relative * e.abs()))).max().ToDouble();
        var max = diff.max().ToDouble();
        Assert.True(excess <= 0, $"max |diff| {max:E3}: over {tolerance:E1} + {relative:E1} * |expected| by {excess:E3} at the worst element");
        return max;
    }
}
