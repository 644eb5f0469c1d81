using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Kernels;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Gpt2;

/// <summary>
/// GPT-2's Conv1D keeps its [in, out] weight over [out, in] memory: loaded and drawn with the values a contiguous
/// parameter had, computing x·W + b, and sending a decode step's rows to <see cref="SkinnyLinear"/>, so a row's logits
/// are the same bits alone and in any batch.
/// </summary>
public sealed class Conv1DTests
{
    public Conv1DTests() => LibTorch.Initialize();

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void A_checkpoint_weight_is_read_as_stored_and_kept_over_out_in_memory_in_any_dtype(ScalarType dtype)
    {
        using var model = Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, dtype);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var checkpoint = SafeTensorsFile.Open(Path.Combine(Fixtures.TinyLanguageModel, "model.safetensors"));
        foreach (var name in new[] { "transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_proj.weight" })
        {
            var weight = parameters[name];
            using var stored = checkpoint.Read(checkpoint.Names.Single(n => Gpt2Weights.OurName(n) == name));
            Assert.Equal(stored.shape, weight.shape);
            Assert.False(weight.is_contiguous());
            using var rows = weight.t();
            Assert.True(rows.is_contiguous());
            Assert.Equal(dtype, weight.dtype);
            Assert.True(weight.to(ScalarType.Float32).eq(stored.to(dtype).to(ScalarType.Float32)).all().item<bool>());
        }
    }

    [Fact]
    public void Random_weights_are_the_values_a_contiguous_parameter_drew_from_the_same_seed()
    {
        using var block = new Block(new Conv1D(24, 40));
        Gpt2Weights.InitializeRandom(block, Gpt2Config.BuiltIn["gpt2-tiny"], seed: 5);

        using var expected = empty(24, 40).normal_(0.0, 0.02, new Generator(5UL));
        var weight = block.named_parameters().Single(p => p.name == "c_fc.weight").parameter;
        Assert.False(weight.is_contiguous());
        Assert.True(weight.eq(expected).all().item<bool>());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(64)]
    [InlineData(200)]
    public void Computes_x_times_w_plus_b_for_decode_rows_and_prompts(int rows)
    {
        using var scope = NewDisposeScope();
        using var layer = new Conv1D(48, 80);
        Gpt2Weights.InitializeRandom(layer, Gpt2Config.BuiltIn["gpt2-tiny"], seed: 3);
        var weight = layer.named_parameters().Single(p => p.name == "weight").parameter;
        var bias = layer.named_parameters().Single(p => p.name == "bias").parameter;
        using (no_grad())
        {
            bias.normal_(0.0, 1.0, new Generator(4));
        }

        var input = randn(new long[] { 1, rows, 48 }, generator: new Generator(6));
        using var t = weight.t();
        Assert.Equal(rows <= SkinnyLinear.MaxRows && SkinnyLinear.Lanes > 0, SkinnyLinear.Applies(input, t, bias));

        var output = layer.forward(input);
        var expected = addmm(bias, input.reshape(-1, 48), weight.contiguous(), 1, 1).view(1, rows, 80);
        Fixtures.AssertClose(expected, output, 1e-5);
    }

    [Fact]
    public void A_rows_decode_logits_are_the_same_bits_alone_and_in_any_batch()
    {
        using var model = Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, ScalarType.Float32);
        using var noGrad = no_grad();
        using var ids = tensor(new[] { 464L, 329L, 318L, 12L, 99L, 7L, 500L, 81L, 2L }, [9, 1]);
        var alone = Enumerable.Range(0, 9).Select(r => model.Logits(ids[r..(r + 1)])).ToList();
        foreach (var batch in new[] { 2, 3, 4, 5, 8, 9 })
        {
            using var logits = model.Logits(ids[..batch]);
            for (var r = 0; r < batch; r++)
            {
                using var row = logits[r..(r + 1)];
                Assert.True(row.eq(alone[r]).all().item<bool>(), $"row {r} of a batch of {batch}");
            }
        }

        alone.ForEach(t => t.Dispose());
    }

    // A layer under a name, as in the model (c_fc.weight, c_fc.bias).
    private sealed class Block : nn.Module
    {
        private readonly Conv1D c_fc;

        public Block(Conv1D layer)
            : base(nameof(Block))
        {
            c_fc = layer;
            RegisterComponents();
        }
    }
}
