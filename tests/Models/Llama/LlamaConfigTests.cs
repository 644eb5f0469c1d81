using System.Text.Json.Nodes;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

public sealed class LlamaConfigTests
{
    public LlamaConfigTests() => LibTorch.Initialize();

    [Fact]
    public void Missing_keys_take_transformers_defaults_per_model_type()
    {
        var llama = LlamaConfig.FromJson("t", new JsonObject { ["model_type"] = "llama", ["hidden_size"] = 256, ["num_attention_heads"] = 8 });
        Assert.Equal((32, 8, 32, 10000.0, 2048, 1e-6), (llama.HeadDim, llama.KeyValueHeadCount, llama.LayerCount, llama.Rope.Theta, llama.MaxPositions, llama.RmsNormEps));
        Assert.False(llama.TieWordEmbeddings || llama.QkvBias || llama.OutputBias);
        Assert.Equal([2L], llama.EosTokenIds);

        var mistral = LlamaConfig.FromJson("t", new JsonObject { ["model_type"] = "mistral" });
        Assert.Equal((8, 4096), (mistral.KeyValueHeadCount, mistral.SlidingWindow));
        Assert.True(mistral.IsSliding(0));

        var qwen2 = LlamaConfig.FromJson("t", new JsonObject { ["model_type"] = "qwen2", ["sliding_window"] = 128 });
        Assert.True(qwen2.QkvBias);
        Assert.False(qwen2.OutputBias);
        Assert.Null(qwen2.SlidingWindow);

        var qwen3 = LlamaConfig.FromJson("t", new JsonObject { ["model_type"] = "qwen3", ["attention_bias"] = true });
        Assert.Equal(128, qwen3.HeadDim);
        Assert.True(qwen3.QueryKeyNorm && qwen3.QkvBias && qwen3.OutputBias);
    }

    [Fact]
    public void Eos_token_id_may_be_a_list_and_generation_config_overrides_it()
    {
        var source = LlamaSource.Resolve(LlamaFixtures.ModelFolder("llama3-tiny"));
        Assert.Equal([638L, 639L], source.EndOfSequenceIds);
        Assert.Equal(638L, source.PadTokenId);
        var generation = GenerationConfig.Read(LlamaFixtures.ModelFolder("llama3-tiny"))!;
        Assert.Equal([638L, 639L], generation.EosTokenIds!);
        Assert.Null(generation.PadTokenId);
    }

    [Fact]
    public void Built_in_configs_carry_the_published_sizes()
    {
        var names = new[] { "llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen3-0.6b", "qwen2.5-0.5b", "mistral-7b", "llama-tiny" };
        Assert.All(names, n => Assert.True(LlamaConfig.BuiltIn.ContainsKey(n), n));
        var small = LlamaConfig.BuiltIn["llama-3.2-1b"];
        Assert.Equal((128256, 2048, 16, 32, 8, 64, 8192), (small.VocabSize, small.HiddenSize, small.LayerCount, small.HeadCount, small.KeyValueHeadCount, small.HeadDim, small.IntermediateSize));
        Assert.Equal(RopeParameters.Llama3(500000, 32, 1, 4, 8192), small.Rope);
        Assert.True(small.TieWordEmbeddings);
        var staged = new LlamaStagedModel(LlamaSource.Resolve("llama-3.2-1b"), ScalarType.BFloat16);
        // Llama 3.2 1B has 1,235,814,400 parameters; the staged view holds the tied head a second time.
        Assert.Equal(1_235_814_400L, staged.Layers.Sum(l => l.ParameterCount) - (128256L * 2048));
    }

    [Fact]
    public void Built_in_models_initialise_reproducibly_from_a_seed()
    {
        using var a = LlamaSource.Resolve("llama-tiny", seed: 7).CreateModel(CPU, ScalarType.Float32);
        using var b = LlamaSource.Resolve("llama-tiny", seed: 7).CreateModel(CPU, ScalarType.Float32);
        using var c = LlamaSource.Resolve("llama-tiny", seed: 8).CreateModel(CPU, ScalarType.Float32);
        using var ids = tensor(new[] { 4L, 30L, 200L }, [1, 3]);
        using var la = a.Logits(ids);
        using var lb = b.Logits(ids);
        using var lc = c.Logits(ids);
        Assert.Equal(0.0, Fixtures.MaxAbsDiff(la, lb));
        Assert.True(Fixtures.MaxAbsDiff(la, lc) > 1e-3);
    }

    [Fact]
    public void Random_init_is_on_the_target_dtype_with_norms_one()
    {
        // Qwen2.5-0.5B's switches (q/k/v bias, tied head) at a size a test draws in milliseconds: the rule goes by each
        // tensor's name and rank, not by the model's size.
        var config = LlamaConfig.BuiltIn["qwen2.5-0.5b"] with { VocabSize = 1024, HiddenSize = 128, IntermediateSize = 512, LayerCount = 4, HeadCount = 4, KeyValueHeadCount = 2, HeadDim = 32 };
        using var model = new LlamaForCausalLM(config, CPU, ScalarType.BFloat16);
        LlamaWeights.InitializeRandom(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), seed: 0);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        var named = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(1.0, named["model.norm.weight"].to(ScalarType.Float32).mean().ToDouble());
        Assert.Equal(0.0, named["model.layers.0.self_attn.q_proj.bias"].to(ScalarType.Float32).abs().max().ToDouble());
        var std = named["model.layers.3.mlp.up_proj.weight"].to(ScalarType.Float32).std().ToDouble();
        Assert.InRange(std, 0.019, 0.021);

        // A built-in is drawn by that rule on the dtype asked for.
        using var builtIn = LlamaSource.Resolve("llama-tiny").CreateModel(CPU, ScalarType.BFloat16);
        Assert.All(builtIn.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.Equal(1.0, builtIn.named_parameters().Single(p => p.name == "model.norm.weight").parameter.to(ScalarType.Float32).mean().ToDouble());
    }
}
