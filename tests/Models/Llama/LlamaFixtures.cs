using System.Collections.Concurrent;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

/// <summary>The Llama-family reference fixtures (tests/fixtures/{llama3,qwen2,qwen3,mistral}-tiny).</summary>
public static class LlamaFixtures
{
    public static readonly TheoryData<string> Names = new() { "llama3-tiny", "qwen2-tiny", "qwen3-tiny", "mistral-tiny" };

    private static readonly ConcurrentDictionary<string, Dictionary<string, Tensor>> Cache = new();

    public static string ModelFolder(string name) => Path.Combine(Fixtures.Root, name, "model");

    public static Tensor Expected(string name, string tensor) =>
        Cache.GetOrAdd(name, n =>
        {
            Models.Runtime.LibTorch.Initialize();
            return SafeTensorsFile.ReadAll(Path.Combine(Fixtures.Root, n, "expected.safetensors"));
        })[tensor];

    /// <summary>Max |diff| over the positions where <paramref name="mask"/> [B, T] is 1; asserts it is within tolerance.</summary>
    public static double AssertCloseAtRealPositions(Tensor expected, Tensor actual, Tensor mask, double tolerance = Fixtures.Tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var real = mask.to(ScalarType.Bool).cpu();
        var diff = (actual.to(ScalarType.Float64).cpu() - expected.to(ScalarType.Float64)).abs();
        var max = diff[real].max().ToDouble();
        Assert.True(max <= tolerance, $"max |diff| at real positions {max:E3} > {tolerance:E1}");
        return max;
    }
}
