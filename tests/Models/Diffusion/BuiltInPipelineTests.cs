using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Diffusion;

/// <summary>Built-in pipelines: the published shapes (counted on the meta device, nothing allocated), and the tiny one end to end.</summary>
public sealed class BuiltInPipelineTests
{
    public BuiltInPipelineTests() => Models.Runtime.LibTorch.Initialize();

    private static long Parameters(nn.Module module) => module.parameters().Sum(p => p.NumberOfElements);

    // Parameter counts of runwayml/stable-diffusion-v1-5 and stabilityai/stable-diffusion-2-1-base as diffusers and
    // transformers load them (text encoder, UNet, VAE).
    [Theory]
    [InlineData("sd-1.5", 123_060_480L, 859_520_964L, 83_653_863L)]
    [InlineData("sd-2.1-base", 340_387_840L, 865_910_724L, 83_653_863L)]
    public void Built_ins_have_the_published_parameter_counts(string name, long text, long unet, long vae)
    {
        var source = StableDiffusionSource.Resolve(name);
        var meta = new Device(DeviceType.META);
        using var textEncoder = new ClipTextModel(source.TextEncoder, meta);
        using var noisePredictor = new UNet2DConditionModel(source.Unet, meta);
        using var autoencoder = new AutoencoderKL(source.Vae, meta);
        Assert.Equal((text, unet, vae), (Parameters(textEncoder), Parameters(noisePredictor), Parameters(autoencoder)));
        Assert.Equal((512, 8, "PNDMScheduler"), (source.DefaultSize, source.VaeScaleFactor, source.DefaultScheduler.ClassName));
    }

    [Fact]
    public void Sd_tiny_has_the_fixture_tensor_names_and_shapes()
    {
        var builtIn = StableDiffusionSource.Resolve("sd-tiny");
        var meta = new Device(DeviceType.META);
        foreach (var (component, module) in new (string, nn.Module)[]
        {
            ("unet", new UNet2DConditionModel(builtIn.Unet, meta)), ("vae", new AutoencoderKL(builtIn.Vae, meta)), ("text_encoder", new ClipTextModel(builtIn.TextEncoder, meta)),
        })
        {
            var checkpoint = HuggingFaceCheckpoint.Open(Path.Combine(SdTinyFixture.Model, component), component == "text_encoder" ? "model" : "diffusion_pytorch_model");
            var ours = module.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
            Assert.Equal(checkpoint.Names.Order(), ours.Keys.Order());
            Assert.All(ours, p => Assert.Equal(checkpoint.ShapeOf(p.Key), p.Value));
            module.Dispose();
        }
    }

    [Fact]
    public void Sd_tiny_generates_finite_seeded_images_with_its_byte_level_tokenizer()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained("sd-tiny", seed: 3);
        var options = new TextToImageOptions(3, Seed: 1);
        var first = pipe.Call(["a dog", "a cat"], options);
        var again = pipe.Call(["a dog"], options);
        Assert.Equal((32, 32), (first[0].Height, first[0].Width));
        using var same = first[0].Pixels.to(ScalarType.Int32) - again[0].Pixels.to(ScalarType.Int32);
        Assert.True(same.abs().max().ToInt32() <= 1);
        using var spread = first[0].Pixels.to(ScalarType.Float32).std();
        Assert.True(spread.ToSingle() > 1, "an image of one colour: the random weights collapsed");
        foreach (var image in first.Concat(again))
        {
            image.Dispose();
        }
    }
}
