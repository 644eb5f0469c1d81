using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tests.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Generation;

/// <summary>
/// Generation never decodes from NaN/Inf logits: fp16 overflow fails the call, greedy or sampled, as transformers'
/// sampling does (public case: transformers#33294, fp16 overflow in generate), where fp32 generates.
/// </summary>
public sealed class NonFiniteLogitsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-nonfinite-").FullName;

    public NonFiniteLogitsTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>mistral-tiny (F16 weights) with its final norm scaled by 3e4: the normed hidden state passes fp16's 65504.</summary>
    private LlamaSource Overflowing()
    {
        foreach (var file in Directory.GetFiles(LlamaFixtures.ModelFolder("mistral-tiny")))
        {
            File.Copy(file, Path.Combine(_folder, Path.GetFileName(file)));
        }

        var path = Path.Combine(_folder, "model.safetensors");
        var weights = SafeTensorsFile.ReadAll(path);
        weights["model.norm.weight"] = weights["model.norm.weight"].mul(3e4);
        SafeTensorsFile.Write(path, weights, new Dictionary<string, string> { ["format"] = "pt" });
        return LlamaSource.Resolve(_folder);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Any_non_finite_logit_of_an_active_row_fails_the_step_and_only_then(float value)
    {
        using var scope = NewDisposeScope();
        var logits = randn(3, 50);
        NonFiniteLogitsException.ThrowIfAny(logits, null, 0, null);
        logits[1, 17] = tensor(value);
        Assert.Throws<NonFiniteLogitsException>(() => NonFiniteLogitsException.ThrowIfAny(logits, null, 0, null));
        Assert.Throws<NonFiniteLogitsException>(() => NonFiniteLogitsException.ThrowIfAny(logits, tensor(new[] { false, true, false }), 0, null));
        NonFiniteLogitsException.ThrowIfAny(logits, tensor(new[] { true, false, true }), 0, null);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fp16_overflow_fails_generation_where_fp32_generates(bool sample)
    {
        var source = Overflowing();
        var ids = LlamaFixtures.Expected("mistral-tiny", "greedy_input_ids");
        var mask = LlamaFixtures.Expected("mistral-tiny", "greedy_attention_mask");
        var options = new GenerationOptions(MaxNewTokens: 4, DoSample: sample, Seed: 3);
        using (var fp32 = source.CreateModel(CPU, ScalarType.Float32))
        {
            using var generated = fp32.Generate(ids, mask, options);
            Assert.Equal(7 + 4, generated.shape[1]);
        }

        using var fp16 = source.CreateModel(CPU, ScalarType.Float16);
        var error = Assert.Throws<NonFiniteLogitsException>(() => fp16.Generate(ids, mask, options));
        Assert.Contains("hold NaN or Inf at step 0 in fp16", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_pipelined_group_fails_on_a_row_of_nan_logits()
    {
        var ids = LlamaFixtures.Expected("mistral-tiny", "greedy_input_ids");
        using var group = new SequenceGroup("g", ids, null, null, new GenerationOptions(MaxNewTokens: 4, DoSample: true), [2], 0);
        using var logits = zeros(2, 512);
        logits[1, 7] = tensor(float.NaN);
        Assert.Throws<NonFiniteLogitsException>(() => group.Next(logits));
    }
}
