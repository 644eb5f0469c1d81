using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

/// <summary>Our Llama-family decoder against the reference fixtures (float32, CPU, tolerance 1e-4).</summary>
public sealed class LlamaFixtureTests
{
    private readonly ITestOutputHelper _output;

    public LlamaFixtureTests(ITestOutputHelper output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    private static LlamaForCausalLM Model(string name) =>
        LlamaSource.Resolve(LlamaFixtures.ModelFolder(name)).CreateModel(CPU, ScalarType.Float32);

    [Fact]
    public void Llama3_config_is_v4_with_llama3_rope_scaling_and_an_eos_list()
    {
        var config = LlamaSource.Resolve(LlamaFixtures.ModelFolder("llama3-tiny")).Config;
        Assert.Equal("llama", config.ModelType);
        Assert.Equal(RopeParameters.Llama3(10000, 8, 1, 4, 64), config.Rope);
        Assert.Equal([638L, 639L], config.EosTokenIds);
        Assert.Equal(637L, config.BosTokenId);
        Assert.True(config.TieWordEmbeddings);
        Assert.Equal((3, 4, 2, 16, 160, 640), (config.LayerCount, config.HeadCount, config.KeyValueHeadCount, config.HeadDim, config.IntermediateSize, config.VocabSize));
        Assert.Equal("bfloat16", config.StoredDtype);
        Assert.False(config.QkvBias || config.OutputBias || config.QueryKeyNorm);
    }

    [Fact]
    public void Qwen2_config_has_qkv_bias_no_head_dim_and_no_sliding_window()
    {
        var config = LlamaSource.Resolve(LlamaFixtures.ModelFolder("qwen2-tiny")).Config;
        Assert.Equal("qwen2", config.ModelType);
        Assert.Equal(16, config.HeadDim);
        Assert.True(config.QkvBias);
        Assert.False(config.OutputBias);
        Assert.Null(config.SlidingWindow);
        Assert.False(config.TieWordEmbeddings);
        Assert.Equal(RopeParameters.Default(1e6), config.Rope);
        Assert.Equal(1e-6, config.RmsNormEps);
        Assert.Equal(704, config.VocabSize);
    }

    [Fact]
    public void Qwen3_config_is_v5_with_rope_parameters_and_qk_norm()
    {
        var config = LlamaSource.Resolve(LlamaFixtures.ModelFolder("qwen3-tiny")).Config;
        Assert.Equal("qwen3", config.ModelType);
        Assert.Equal(RopeParameters.Default(1e6), config.Rope);
        Assert.Equal("bfloat16", config.StoredDtype);
        Assert.Equal(32, config.HeadDim);
        Assert.True(config.QueryKeyNorm);
        Assert.True(config.TieWordEmbeddings);
        Assert.False(config.QkvBias);
    }

    [Fact]
    public void Mistral_config_with_null_sliding_window_is_full_attention()
    {
        var config = LlamaSource.Resolve(LlamaFixtures.ModelFolder("mistral-tiny")).Config;
        Assert.Equal("mistral", config.ModelType);
        Assert.Null(config.SlidingWindow);
        Assert.All(Enumerable.Range(0, config.LayerCount), i => Assert.False(config.IsSliding(i)));
        Assert.Equal([2L], config.EosTokenIds);
        Assert.Equal(RopeParameters.Default(1e6), config.Rope);
    }

    [Theory]
    [MemberData(nameof(LlamaFixtures.Names), MemberType = typeof(LlamaFixtures))]
    public void Rope_inverse_frequencies_match(string name)
    {
        var config = LlamaSource.Resolve(LlamaFixtures.ModelFolder(name)).Config;
        using var actual = new RotaryEmbedding(config).InverseFrequencies();
        var diff = Fixtures.AssertClose(LlamaFixtures.Expected(name, "rope_inv_freq"), actual, 1e-6);
        _output.WriteLine($"{name} rope_inv_freq max |diff| = {diff:E2}");
    }

    [Theory]
    [MemberData(nameof(LlamaFixtures.Names), MemberType = typeof(LlamaFixtures))]
    public void Logits_match_at_real_positions_of_a_right_padded_batch(string name)
    {
        using var model = Model(name);
        var mask = LlamaFixtures.Expected(name, "attention_mask");
        using var logits = model.Logits(LlamaFixtures.Expected(name, "input_ids"), mask);
        var diff = LlamaFixtures.AssertCloseAtRealPositions(LlamaFixtures.Expected(name, "logits"), logits, mask);
        _output.WriteLine($"{name} logits max |diff| = {diff:E2}");
    }

    [Theory]
    [MemberData(nameof(LlamaFixtures.Names), MemberType = typeof(LlamaFixtures))]
    public void Hidden_states_and_final_norm_match_at_real_positions(string name)
    {
        using var model = Model(name);
        var mask = LlamaFixtures.Expected(name, "attention_mask");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var hidden = new List<Tensor>();
        var final = model.Model.Forward(LlamaFixtures.Expected(name, "input_ids"), attentionMask: mask, hiddenStates: hidden);
        Assert.Equal(model.Config.LayerCount + 1, hidden.Count);
        for (var k = 0; k < hidden.Count; k++)
        {
            LlamaFixtures.AssertCloseAtRealPositions(LlamaFixtures.Expected(name, $"hidden_{k}"), hidden[k], mask);
        }

        LlamaFixtures.AssertCloseAtRealPositions(LlamaFixtures.Expected(name, "final_norm"), final, mask);
    }

    [Theory]
    [MemberData(nameof(LlamaFixtures.Names), MemberType = typeof(LlamaFixtures))]
    public void Greedy_generation_of_a_left_padded_batch_matches_ids_and_step_logits(string name)
    {
        using var model = Model(name);
        var steps = new List<Tensor>();
        using var output = GenerationLoop.Generate(
            model,
            LlamaFixtures.Expected(name, "greedy_input_ids"),
            LlamaFixtures.Expected(name, "greedy_attention_mask"),
            new GenerationOptions(MaxNewTokens: 10),
            onStepLogits: (_, logits) => steps.Add(logits.clone().DetachFromDisposeScope()));

        Assert.Equal(LlamaFixtures.Expected(name, "greedy_output").data<long>().ToArray(), output.data<long>().ToArray());
        using var stepLogits = stack(steps, 1);
        var diff = Fixtures.AssertClose(LlamaFixtures.Expected(name, "greedy_step_logits"), stepLogits);
        _output.WriteLine($"{name} greedy_step_logits max |diff| = {diff:E2}");
        steps.ForEach(t => t.Dispose());
    }

    [Theory]
    [MemberData(nameof(LlamaFixtures.Names), MemberType = typeof(LlamaFixtures))]
    public void A_row_generated_alone_equals_the_fixture_and_its_row_in_the_batch(string name)
    {
        using var model = Model(name);
        using var prompt = LlamaFixtures.Expected(name, "greedy_input_ids")[1..2, 3..];
        using var alone = model.Generate(prompt, null, new GenerationOptions(MaxNewTokens: 10));
        Assert.Equal(LlamaFixtures.Expected(name, "greedy_row1_alone").data<long>().ToArray(), alone.data<long>().ToArray());
    }

    [Fact]
    public void Bf16_weights_load_to_bf16_and_run_close_to_fp32()
    {
        const string name = "llama3-tiny";
        using var model = LlamaSource.Resolve(LlamaFixtures.ModelFolder(name)).CreateModel(CPU, ScalarType.BFloat16);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        var mask = LlamaFixtures.Expected(name, "attention_mask");
        using var logits = model.Logits(LlamaFixtures.Expected(name, "input_ids"), mask);
        Assert.Equal(ScalarType.BFloat16, logits.dtype);
        LlamaFixtures.AssertCloseAtRealPositions(LlamaFixtures.Expected(name, "logits"), logits, mask, 0.05);
    }
}
