using System.Text.Json.Nodes;
using DistributedInference.Models.Diffusion;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Diffusion;

/// <summary>The whole pipeline on the fixture's four runs: every expected tensor within README.json's tolerances, images equal except rounding ties.</summary>
public sealed class StableDiffusionPipelineTests
{
    private readonly ITestOutputHelper _output;

    public StableDiffusionPipelineTests(ITestOutputHelper output)
    {
        _output = output;
        Models.Runtime.LibTorch.Initialize();
        _ = SdTinyFixture.Pipeline;
    }

    private static IReadOnlyList<string> Strings(string key) => ((JsonArray)SdTinyFixture.Prompts[key]!).Select(p => p!.GetValue<string>()).ToList();

    [Theory]
    [InlineData("pndm", 4)]
    [InlineData("ddim", 3)]
    [InlineData("euler", 3)]
    [InlineData("noguide", 4)]
    public void Every_tensor_of_the_run_equals_the_fixture(string run, int steps)
    {
        var guided = run != "noguide";
        var options = guided ? new TextToImageOptions(steps, 7.5, run, 32, 48) : new TextToImageOptions(steps, 1.0);
        var ids = SdTinyFixture.Expected(guided ? "input_ids" : "noguide_input_ids");
        var negative = guided ? SdTinyFixture.Expected("negative_input_ids") : null;
        var latents = SdTinyFixture.Expected(guided ? "latents_init" : "noguide_latents_init");
        var seen = new Dictionary<string, Tensor>();
        using var image = SdTinyFixture.Pipeline.Generate(ids, negative, options, latents: latents, observe: (name, step, value) =>
        {
            Tensor Keep() => value.clone().DetachFromDisposeScope();
            if (step == 0)
            {
                seen[$"{name}_step0"] = Keep();
            }

            if (name == "latents")
            {
                seen.GetValueOrDefault("latents_final")?.Dispose();
                seen["latents_final"] = Keep();
            }

            if (step < 0)
            {
                seen[name] = Keep();
            }
        });
        foreach (var name in new[] { "unet_input", "noise_pred_raw", "noise_pred", "latents" })
        {
            _output.WriteLine($"{run}_{name}_step0: {SdTinyFixture.AssertClose($"{run}_{name}_step0", seen[$"{name}_step0"]):E2}");
        }

        foreach (var name in new[] { "latents_final", "decoded", "image" })
        {
            _output.WriteLine($"{run}_{name}: {SdTinyFixture.AssertClose($"{run}_{name}", seen[name]):E2}");
        }

        var ties = SdTinyFixture.AssertImagesEqualExceptTies(SdTinyFixture.Expected($"{run}_image_uint8"), image, SdTinyFixture.Expected($"{run}_image"));
        _output.WriteLine($"{run}_image_uint8: {ties} pixel(s) off by one at rounding ties");
        foreach (var tensor in seen.Values)
        {
            tensor.Dispose();
        }
    }

    [Fact]
    public void Prompts_through_the_tokenizer_give_the_fixture_images()
    {
        var tokenizer = SdTinyFixture.Pipeline.Source.Tokenizer;
        using var ids = tokenizer.Tokenize(Strings("prompts"));
        using var negative = tokenizer.Tokenize(Strings("negative_prompt"));
        using var image = SdTinyFixture.Pipeline.Generate(ids, negative, new TextToImageOptions(3, 7.5, "ddim", 32, 48), latents: SdTinyFixture.Expected("latents_init"));
        SdTinyFixture.AssertImagesEqualExceptTies(SdTinyFixture.Expected("ddim_image_uint8"), image, SdTinyFixture.Expected("ddim_image"));
    }

    // The row's latents are the same alone and in a batch (its own generator); the float work differs by rounding between
    // batch sizes (BLAS/oneDNN block differently: latents move by ~1e-5, Euler's by ~2e-4), so a pixel at a rounding tie
    // may come out one level apart.
    [Fact]
    public void A_seeded_row_gives_the_same_image_alone_and_in_a_batch_but_for_rounding_ties()
    {
        var tokenizer = SdTinyFixture.Pipeline.Source.Tokenizer;
        var prompts = Strings("prompts");
        var options = new TextToImageOptions(2, 7.5, "euler", Seed: 11);
        using var ids = tokenizer.Tokenize(prompts);
        using var negative = tokenizer.Tokenize(prompts.Select(_ => string.Empty).ToList());
        using var batch = SdTinyFixture.Pipeline.Generate(ids, negative, options, rowIndex: [0, 1, 2]);
        using var aloneIds = tokenizer.Tokenize([prompts[1]]);
        using var aloneNegative = tokenizer.Tokenize([string.Empty]);
        using var alone = SdTinyFixture.Pipeline.Generate(aloneIds, aloneNegative, options, rowIndex: [1]);
        using var diff = (batch[1].to(ScalarType.Int32) - alone[0].to(ScalarType.Int32)).abs();
        Assert.True(diff.max().ToInt32() <= 1, $"off by {diff.max().ToInt32()} levels");
        Assert.True(diff.gt(0).sum().ToInt32() <= 8, $"{diff.gt(0).sum().ToInt32()} of {diff.NumberOfElements} values differ");
        using var other = SdTinyFixture.Pipeline.Generate(aloneIds, aloneNegative, options, rowIndex: [2]);
        using var otherDiff = (other.to(ScalarType.Int32) - alone.to(ScalarType.Int32)).abs().max();
        Assert.True(otherDiff.ToInt32() > 0, "another row index draws other latents");
        Assert.Equal([1L, 32, 32, 3], alone.shape);
    }

    // bf16 weights and activations (CPU half-precision kernels are slow here: one prompt, fp16 checked by hand: mean
    // 0.15 levels, max 1).
    [Fact]
    public void A_bf16_pipeline_stays_near_the_float32_images()
    {
        const ScalarType dtype = ScalarType.BFloat16;
        using var pipe = SdTinyFixture.Source.CreatePipeline(CPU, dtype);
        using var image = pipe.Generate(
            SdTinyFixture.Expected("input_ids").narrow(0, 0, 1), SdTinyFixture.Expected("negative_input_ids").narrow(0, 0, 1),
            new TextToImageOptions(3, 7.5, "ddim", 32, 48), latents: SdTinyFixture.Expected("latents_init").narrow(0, 0, 1));
        using var diff = (image.to(ScalarType.Float32) - SdTinyFixture.Expected("ddim_image_uint8").narrow(0, 0, 1).to(ScalarType.Float32)).abs();
        var (mean, max) = (diff.mean().ToSingle(), diff.max().ToSingle());
        _output.WriteLine($"{dtype}: mean |diff| {mean:F2} levels, max {max:F0}");
        Assert.True(mean < 4, $"mean |diff| {mean:F2} levels");
    }

    [Fact]
    public void Bad_sizes_and_latents_are_one_line_errors_before_any_compute()
    {
        using var ids = SdTinyFixture.Pipeline.Source.Tokenizer.Tokenize(["a cat"]);
        var error = Assert.Throws<InvalidInputException>(() => SdTinyFixture.Pipeline.Generate(ids, null, new TextToImageOptions(2, Height: 33)));
        Assert.Equal("--height and --width must be multiples of the VAE's scale factor 2, got 33x32", error.Message);
        using var latents = zeros(1, 4, 8, 8);
        error = Assert.Throws<InvalidInputException>(() => SdTinyFixture.Pipeline.Generate(ids, null, new TextToImageOptions(2), latents: latents));
        Assert.Equal("latents must be [1, 4, 16, 16] for 1 prompt(s) at 32x32, got [1, 4, 8, 8]", error.Message);
        error = Assert.Throws<InvalidInputException>(() => SdTinyFixture.Pipeline.Generate(ids, null, new TextToImageOptions(2, Scheduler: "heun")));
        Assert.Equal("unknown scheduler 'heun': use pndm, ddim, euler", error.Message);
    }
}
