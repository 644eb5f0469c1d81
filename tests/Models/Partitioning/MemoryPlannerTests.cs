using DistributedInference.Models.Llama;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Partitioning;

public sealed class MemoryPlannerTests
{
    public MemoryPlannerTests() => LibTorch.Initialize();

    private static StagedLayerInfo[] Layers(int n) => Enumerable.Range(0, n).Select(i => new StagedLayerInfo($"l{i}", 100, 400)).ToArray();

    [Fact]
    public void Parses_accelerate_style_budgets()
    {
        var budgets = MaxMemory.Parse("cpu=6GiB, cuda:0=20GB,cuda:1=512MiB");
        Assert.Equal(6L << 30, budgets.Of(DeviceName.Cpu));
        Assert.Equal(20_000_000_000L, budgets.Bytes["cuda:0"]);
        Assert.Equal(512L << 20, budgets.Bytes["cuda:1"]);
        Assert.Equal(1536L << 20, MaxMemory.Parse("cpu=1.5GiB").Of(DeviceName.Cpu));
    }

    [Theory]
    [InlineData("cpu", "not DEVICE=SIZE")]
    [InlineData("cpu=6XB", "unknown unit")]
    [InlineData("cpu=1GiB,cpu=2GiB", "named twice")]
    [InlineData("", "no budget")]
    public void Bad_budgets_are_one_line_errors(string text, string message) =>
        Assert.Contains(message, Assert.Throws<InvalidInputException>(() => MaxMemory.Parse(text)).Message);

    [Fact]
    public void Unequal_budgets_get_unequal_stages_each_within_its_budget()
    {
        var memory = Enumerable.Repeat(new LayerMemory(100, 20, 30), 10).ToList();
        var plan = MemoryPlanner.Plan(Layers(10), memory, [DeviceName.Parse("cuda:0"), DeviceName.Parse("cuda:1")], MaxMemory.Parse("cuda:0=1000B,cuda:1=400B"));
        // 10 layers of 120 bytes (+30 activations once per stage): 7 fit in 1000 bytes, 3 in 400.
        Assert.Equal([7, 3], plan.Plan.Stages.Select(s => s.LayerCount));
        Assert.All(plan.Memory, m => Assert.True(m.Total <= m.Budget));
        Assert.Equal(7 * 100, plan.Memory[0].Weights);
        Assert.Equal(7 * 20, plan.Memory[0].Cache);
        Assert.Contains("of 0.0 GiB", plan.Describe());
    }

    [Fact]
    public void Stages_on_one_device_share_its_budget()
    {
        var memory = Enumerable.Repeat(new LayerMemory(100, 0, 0), 8).ToList();
        var plan = MemoryPlanner.Plan(Layers(8), memory, [DeviceName.Cpu, DeviceName.Cpu], MaxMemory.Parse("cpu=800B"));
        Assert.Equal([4, 4], plan.Plan.Stages.Select(s => s.LayerCount));
        Assert.All(plan.Memory, m => Assert.Equal(400, m.Budget));
    }

    [Fact]
    public void A_model_that_cannot_fit_says_how_much_it_needs_and_the_devices_offer()
    {
        var staged = new LlamaStagedModel(LlamaSource.Resolve("llama-3.1-8b"));
        var memory = staged.Memory(ScalarType.BFloat16, cacheRows: 1, rows: 1, positions: 16, cached: false);
        var e = Assert.Throws<InvalidInputException>(() => MemoryPlanner.Plan(staged.Layers, memory, [DeviceName.Cpu, DeviceName.Parse("cuda:0")], MaxMemory.Parse("cpu=6GiB,cuda:0=6GiB")));
        Assert.StartsWith("the model needs 15.0 GiB (weights 15.0 GiB, KV cache 0.0 GiB, activations 0.0 GiB), the devices offer 12.0 GiB", e.Message);

        // Enough in total, but no layer may be split: a stage cannot take half a layer.
        var layers = Layers(2);
        e = Assert.Throws<InvalidInputException>(() => MemoryPlanner.Plan(layers, [new LayerMemory(300, 0, 0), new LayerMemory(10, 0, 0)], [DeviceName.Cpu, DeviceName.Parse("cuda:0")], MaxMemory.Parse("cpu=200B,cuda:0=200B")));
        Assert.Contains("cannot be cut to fit: stage 0 on cpu", e.Message);
    }

    [Fact]
    public void Llama_memory_counts_the_cache_of_every_row_in_flight()
    {
        var config = LlamaConfig.BuiltIn["llama-3.2-1b"];
        var staged = new LlamaStagedModel(LlamaSource.Resolve("llama-3.2-1b"));
        var memory = staged.Memory(ScalarType.BFloat16, cacheRows: 8, rows: 2, positions: 1024, cached: true);
        Assert.Equal(staged.Layers.Count, memory.Count);
        Assert.Equal(2L * config.KeyValueHeadCount * config.HeadDim * 2 * 8 * 1024, memory[1].Cache);
        Assert.Equal(0, memory[0].Cache);
        Assert.Equal(staged.Layers.Sum(l => l.ParameterCount) * 2, memory.Sum(m => m.Weights));
    }

    [Fact]
    public void A_generation_is_planned_for_the_rows_in_flight_not_for_every_row()
    {
        // llama-3.2-1b, bf16: 8000 prompts of 32 tokens, 16 new tokens each, at --max-batch-size 8 in 2 micro-batches.
        var config = LlamaConfig.BuiltIn["llama-3.2-1b"];
        var staged = new LlamaStagedModel(LlamaSource.Resolve("llama-3.2-1b"));
        var many = RunMemory.Estimate(staged, ScalarType.BFloat16, rows: 8000, maxBatchSize: 8, numChunks: 2, promptLength: 32, maxNewTokens: 16);
        var few = RunMemory.Estimate(staged, ScalarType.BFloat16, rows: 8, maxBatchSize: 8, numChunks: 2, promptLength: 32, maxNewTokens: 16);
        Assert.Equal(few, many);

        // Each decoder layer caches keys and values of 8 rows x 48 positions; the largest forward is a 4-row prefill of
        // its 32-token prompt, and the head makes float32 logits of each row's last position only.
        Assert.Equal(2L * config.KeyValueHeadCount * config.HeadDim * 2 * 8 * 48, many[1].Cache);
        Assert.Equal(Math.Max(3L * config.IntermediateSize * 2 * 4 * 32, (long)config.HeadCount * 4 * 32 * 32 * 4), many[1].Activations);
        Assert.Equal((long)config.VocabSize * 4 * 4, many[^1].Activations);

        // Within 6 GiB (3 GiB a stage), where a plan for all 8000 rows' caches needed more than ten times that.
        var plan = MemoryPlanner.Plan(StagedLayerInfo.InDtype(staged.Layers, ScalarType.BFloat16), many, [DeviceName.Cpu, DeviceName.Cpu], MaxMemory.Parse("cpu=6GiB"));
        Assert.Equal(2, plan.Plan.Stages.Count);
    }

    [Fact]
    public void A_staged_view_described_in_fp32_is_planned_at_the_runs_dtype()
    {
        var staged = new LlamaStagedModel(LlamaSource.Resolve("llama-3.2-1b"));
        var fp32 = Partitioner.Plan(staged.Layers, [DeviceName.Cpu, DeviceName.Cpu], "auto");
        var bf16 = Partitioner.Plan(StagedLayerInfo.InDtype(staged.Layers, ScalarType.BFloat16), [DeviceName.Cpu, DeviceName.Cpu], "auto");
        Assert.Equal(fp32.Stages.Sum(s => s.ParameterBytes), 2 * bf16.Stages.Sum(s => s.ParameterBytes));
        Assert.Equal(staged.Layers.Sum(l => l.ParameterCount) * 2, bf16.Stages.Sum(s => s.ParameterBytes));
    }
}
