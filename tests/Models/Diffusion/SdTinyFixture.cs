using System.Text.Json.Nodes;
using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Diffusion;

/// <summary>The Stable Diffusion reference fixture (tests/fixtures/sd-tiny, a copy of shared/fixtures/sd-tiny).</summary>
public static class SdTinyFixture
{
    private static readonly Lazy<Dictionary<string, Tensor>> ExpectedTensors = new(() =>
    {
        Models.Runtime.LibTorch.Initialize();
        var all = SafeTensorsFile.ReadAll(Path.Combine(Root, "expected.safetensors"));
        foreach (var tensor in all.Values)
        {
            // Loaded by whichever test asks first, maybe inside its dispose scope: shared by all, freed by none.
            tensor.DetachFromDisposeScope();
        }

        return all;
    });

    private static readonly Lazy<JsonObject> PromptsJson = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "prompts.json")))!);

    private static readonly Lazy<JsonObject> ReadmeJson = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "README.json")))!);

    private static readonly Lazy<StableDiffusionPipeline> SharedPipeline = new(() => Source.CreatePipeline(CPU, ScalarType.Float32));

    public static string Root => Path.Combine(Fixtures.Root, "sd-tiny");

    public static string Model => Path.Combine(Root, "model");

    public static StableDiffusionSource Source => StableDiffusionSource.Resolve(Model);

    /// <summary>One float32 CPU pipeline of the fixture, shared by the tests that only read it.</summary>
    public static StableDiffusionPipeline Pipeline => SharedPipeline.Value;

    public static JsonObject Prompts => PromptsJson.Value;

    public static Tensor Expected(string name) => ExpectedTensors.Value[name];

    /// <summary>README.json's suggested tolerance for a tensor name (1e-4 for the few it does not list, such as noguide_prompt_embeds).</summary>
    public static double Tolerance(string name)
    {
        var tolerances = (JsonObject)ReadmeJson.Value["tolerances_suggested"]!;
        if (tolerances[name] is JsonValue value && value.TryGetValue<double>(out var exact))
        {
            return exact;
        }

        return tolerances.Where(p => p.Key.Split(", ").Any(k => k.EndsWith('*') ? name.StartsWith(k[..^1], StringComparison.Ordinal) : k == name))
            .Select(p => p.Value!.GetValue<double>()).DefaultIfEmpty(Fixtures.Tolerance).First();
    }

    /// <summary>
    /// Asserts |diff| within README.json's tolerance for <paramref name="name"/> plus float32's relative tolerance
    /// (<see cref="Fixtures.Float32RelativeTolerance"/>: the VAE's probes reach |x| = 133, where one ulp is 1.5e-5 and
    /// another CPU's accumulation order was 1.4e-4 off); returns the max |diff|.
    /// </summary>
    public static double AssertClose(string name, Tensor actual) => Fixtures.AssertClose(Expected(name), actual, Tolerance(name), Fixtures.Float32RelativeTolerance);

    /// <summary>
    /// Asserts two uint8 images are equal except pixels off by one level where the expected float image lies within
    /// 1e-3 of a rounding tie (x*255 = k + 0.5); returns the number of such pixels.
    /// </summary>
    public static int AssertImagesEqualExceptTies(Tensor expectedUint8, Tensor actualUint8, Tensor expectedFloatNchw)
    {
        Assert.Equal(expectedUint8.shape, actualUint8.shape);
        using var scope = NewDisposeScope();
        var diff = (actualUint8.to(ScalarType.Int32) - expectedUint8.to(ScalarType.Int32)).abs();
        Assert.True(diff.max().ToInt32() <= 1, $"a pixel is off by {diff.max().ToInt32()} levels");
        var scaled = expectedFloatNchw.permute(0, 2, 3, 1).to(ScalarType.Float64) * 255;
        var nearTie = ((scaled - scaled.floor()) - 0.5).abs().le(1e-3);
        var offAway = diff.gt(0).logical_and(nearTie.logical_not());
        Assert.Equal(0, offAway.sum().ToInt32());
        return diff.gt(0).sum().ToInt32();
    }
}
