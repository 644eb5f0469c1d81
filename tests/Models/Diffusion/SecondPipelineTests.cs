using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Loading;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Diffusion;

/// <summary>
/// A second pipeline config, made for these tests (tests/fixtures/sd-second: SD 2.x style, linear projections, head
/// lists, v_prediction, trailing spacing, a VAE of factor 4, bf16 weights stored under the legacy VAE names), filled with
/// random weights. No reference output exists for it: these tests check that it loads strictly, runs end to end with
/// every scheduler, and is self-consistent (a prompt alone and in a batch).
/// </summary>
public sealed class SecondPipelineTests : IDisposable
{
    private readonly ITestOutputHelper _output;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"di-sd-second-{Guid.NewGuid():N}");

    public SecondPipelineTests(ITestOutputHelper output)
    {
        _output = output;
        Models.Runtime.LibTorch.Initialize();
        Write(_folder);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Copies the configs and fills them with random weights (bf16; the VAE's attention under legacy names).</summary>
    private static void Write(string folder)
    {
        var configs = Path.Combine(Fixtures.Root, "sd-second");
        foreach (var file in Directory.EnumerateFiles(configs, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(folder, Path.GetRelativePath(configs, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }

        StableDiffusionRandomWeights.Write(folder, seed: 21, ScalarType.BFloat16);
        var vae = Path.Combine(folder, "vae", "diffusion_pytorch_model.safetensors");
        var tensors = SafeTensorsFile.ReadAll(vae);
        foreach (var name in tensors.Keys.ToList())
        {
            if (DiffusionWeights.LegacyAttentionName(name) is { } legacy)
            {
                tensors[legacy] = tensors[name];
                tensors.Remove(name);
            }
        }

        File.Delete(vae);
        SafeTensorsFile.Write(vae, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        foreach (var tensor in tensors.Values)
        {
            tensor.Dispose();
        }
    }

    [Fact]
    public void Configs_tokenizer_and_scheduler_are_read_as_diffusers_reads_them()
    {
        var source = StableDiffusionSource.Resolve(_folder);
        Assert.Equal([2, 4, 4], source.Unet.AttentionHeads);
        Assert.True(source.Unet.UseLinearProjection);
        Assert.Equal([2, 2, 2], source.Unet.TransformerLayersPerBlock);
        Assert.Equal((4, 32, 0.18215), (source.VaeScaleFactor, source.DefaultSize, source.Vae.ScalingFactor));
        Assert.Equal("vocab.json + merges.txt", source.Tokenizer.Source);
        Assert.Equal(0L, source.Tokenizer.PadTokenId);
        Assert.Equal(("DDIMScheduler", "v_prediction", "trailing"), (source.DefaultScheduler.ClassName, source.DefaultScheduler.PredictionType, source.DefaultScheduler.TimestepSpacing));
        using var scheduler = DiffusionScheduler.Create(source.DefaultScheduler, 4);
        Assert.Equal([999.0, 749, 499, 249], scheduler.Timesteps);
        var pndm = source.Scheduler("pndm");
        Assert.False(pndm.SkipPrkSteps);
        Assert.Equal("v_prediction", pndm.PredictionType);
    }

    [Theory]
    [InlineData(null, 2)]
    [InlineData("euler", 2)]
    [InlineData("pndm", 1)]
    public void Runs_end_to_end_and_a_prompt_alone_equals_its_row_of_a_batch_but_for_rounding_ties(string? scheduler, int steps)
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(_folder);
        // 40 x 32 pixels: latents 10 x 8, not a multiple of the UNet's factor 4 (the upsamplers go to the skips' sizes).
        var options = new TextToImageOptions(steps, 5.0, scheduler, Height: 40, Width: 32, Seed: 2);
        string[] prompts = ["a blue sphere on a table", "a green cone"];
        var batch = pipe.Call(prompts, options, ["", "dark"]);
        Assert.All(batch, image => Assert.Equal((40, 32), (image.Height, image.Width)));
        using var spread = batch[0].Pixels.to(ScalarType.Float32).std();
        Assert.True(spread.ToSingle() > 1, "an image of one colour");
        var alone = pipe.Call([prompts[1]], options, ["dark"], rowIndex: [1]);
        using var diff = (alone[0].Pixels.to(ScalarType.Int32) - batch[1].Pixels.to(ScalarType.Int32)).abs();
        _output.WriteLine($"{scheduler ?? "ddim (the folder's)"}: {diff.gt(0).sum().ToInt32()} of {diff.NumberOfElements} values differ, by at most {diff.max().ToInt32()}");
        Assert.True(diff.max().ToInt32() <= 1);
        Assert.True(diff.gt(0).sum().ToInt32() <= diff.NumberOfElements / 100);
        foreach (var image in batch.Concat(alone))
        {
            image.Dispose();
        }
    }

    [Fact]
    public void The_folder_loads_the_values_its_writer_drew()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(_folder);
        var (name, parameter) = pipe.Unet.named_parameters().First(p => p.name.EndsWith("attn2.to_k.weight", StringComparison.Ordinal));
        using var drawn = empty(parameter.shape);
        DiffusionWeights.InitializeRandom(name, drawn, "unet", 21);
        using var stored = drawn.to(ScalarType.BFloat16).to(ScalarType.Float32);
        Assert.Equal(0.0, Fixtures.MaxAbsDiff(parameter, stored));
    }
}
