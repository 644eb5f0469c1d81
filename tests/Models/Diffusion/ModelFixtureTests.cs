using DistributedInference.Models.Diffusion;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Diffusion;

/// <summary>The CLIP text encoder, UNet and VAE of the fixture, one stage at a time, against its expected tensors (float32, CPU).</summary>
public sealed class ModelFixtureTests
{
    private readonly ITestOutputHelper _output;

    public ModelFixtureTests(ITestOutputHelper output)
    {
        _output = output;
        Models.Runtime.LibTorch.Initialize();
        _ = SdTinyFixture.Pipeline;
    }

    private static StableDiffusionPipeline Pipeline => SdTinyFixture.Pipeline;

    [Fact]
    public void Configs_are_read_as_from_pretrained_reads_them()
    {
        var source = SdTinyFixture.Source;
        Assert.Equal((32, 3, 4, 64, "quick_gelu", 1000), (source.TextEncoder.HiddenSize, source.TextEncoder.LayerCount, source.TextEncoder.HeadCount, source.TextEncoder.IntermediateSize, source.TextEncoder.HiddenAct, source.TextEncoder.VocabSize));
        Assert.Equal([2, 2], source.Unet.AttentionHeads);
        Assert.False(source.Unet.UseLinearProjection);
        Assert.Equal(64, source.Unet.TimeEmbeddingDim);
        Assert.Equal((2, 32, 0.18215), (source.VaeScaleFactor, source.DefaultSize, source.Vae.ScalingFactor));
        Assert.Equal("PNDMScheduler", source.DefaultScheduler.ClassName);
    }

    [Fact]
    public void Text_encoder_hidden_states_and_last_hidden_state_equal_the_fixture()
    {
        var states = new List<Tensor>();
        using var embeds = Pipeline.TextEncoder.LastHiddenState(SdTinyFixture.Expected("input_ids"), states);
        for (var i = 0; i < 4; i++)
        {
            _output.WriteLine($"text_hidden_{i}: {SdTinyFixture.AssertClose($"text_hidden_{i}", states[i]):E2}");
        }

        _output.WriteLine($"prompt_embeds: {SdTinyFixture.AssertClose("prompt_embeds", embeds):E2}");
        using var negative = Pipeline.EncodePrompt(SdTinyFixture.Expected("negative_input_ids"));
        SdTinyFixture.AssertClose("negative_prompt_embeds", negative);
        using var noguide = Pipeline.EncodePrompt(SdTinyFixture.Expected("noguide_input_ids"));
        SdTinyFixture.AssertClose("noguide_prompt_embeds", noguide);
        states.ForEach(s => s.Dispose());
    }

    [Fact]
    public void Prompts_tokenize_to_the_fixture_input_ids()
    {
        var prompts = ((System.Text.Json.Nodes.JsonArray)SdTinyFixture.Prompts["prompts"]!).Select(p => p!.GetValue<string>()).ToList();
        var negative = ((System.Text.Json.Nodes.JsonArray)SdTinyFixture.Prompts["negative_prompt"]!).Select(p => p!.GetValue<string>()).ToList();
        using var ids = Pipeline.Source.Tokenizer.Tokenize(prompts);
        using var negativeIds = Pipeline.Source.Tokenizer.Tokenize(negative);
        Fixtures.AssertClose(SdTinyFixture.Expected("input_ids"), ids, 0);
        Fixtures.AssertClose(SdTinyFixture.Expected("negative_input_ids"), negativeIds, 0);
    }

    [Fact]
    public void Unet_probes_and_output_equal_the_fixture_at_integer_and_fractional_timesteps()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var probes = new Dictionary<string, Tensor>();
        var output = Pipeline.Unet.Forward(
            SdTinyFixture.Expected("unet_probe_sample"), SdTinyFixture.Expected("unet_probe_timestep"), SdTinyFixture.Expected("unet_probe_encoder_hidden_states"), probes);
        foreach (var name in new[] { "t_emb", "temb", "conv_in", "down_0", "down_1", "mid", "up_0", "up_1", "out" })
        {
            _output.WriteLine($"unet_probe_{name}: {SdTinyFixture.AssertClose($"unet_probe_{name}", probes[name]):E2}");
        }

        SdTinyFixture.AssertClose("unet_probe_out", output);
        var fractional = Pipeline.Unet.Forward(
            SdTinyFixture.Expected("unet_probe_sample"), SdTinyFixture.Expected("unet_probe_timestep_float"), SdTinyFixture.Expected("unet_probe_encoder_hidden_states"));
        _output.WriteLine($"unet_probe_out_float_t: {SdTinyFixture.AssertClose("unet_probe_out_float_t", fractional):E2}");
    }

    [Fact]
    public void Vae_decoder_probes_and_encoder_moments_equal_the_fixture()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = SdTinyFixture.Expected("vae_probe_latents") / Pipeline.Vae.Config.ScalingFactor;
        SdTinyFixture.AssertClose("vae_probe_decoder_input", input);
        var probes = new Dictionary<string, Tensor>();
        var decoded = Pipeline.Vae.Decode(input, probes);
        foreach (var name in new[] { "dec_mid", "dec_up_0", "dec_up_1" })
        {
            _output.WriteLine($"vae_probe_{name}: {SdTinyFixture.AssertClose($"vae_probe_{name}", probes[name]):E2}");
        }

        Fixtures.AssertClose(SdTinyFixture.Expected("pndm_decoded").narrow(0, 0, 1), decoded, 1e-4);
        var moments = Pipeline.Vae.EncodeMoments(SdTinyFixture.Expected("vae_encode_input"));
        _output.WriteLine($"vae_encode_moments: {SdTinyFixture.AssertClose("vae_encode_moments", moments):E2}");
    }
}
