using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;

namespace DistributedInference.Models.Tests.Partitioning;

public sealed class PartitionerTests
{
    private static readonly StagedLayerInfo[] Layers =
    [
        new("wte+wpe", 18, 72), new("h.0", 12, 48), new("h.1", 12, 48), new("h.2", 12, 48), new("ln_f+head", 16, 64),
    ];

    private static DeviceName[] Cpus(int n) => Enumerable.Repeat(DeviceName.Cpu, n).ToArray();

    [Fact]
    public void Split_points_start_stages_at_the_named_layers()
    {
        var plan = Partitioner.Plan(Layers, Cpus(3), "h.1, ln_f+head");
        Assert.Equal([["wte+wpe", "h.0"], ["h.1", "h.2"], ["ln_f+head"]], plan.Stages.Select(s => s.LayerNames));
        Assert.Equal([120L, 96, 64], plan.Stages.Select(s => s.ParameterBytes));
    }

    [Fact]
    public void Auto_minimises_the_largest_stage_and_never_leaves_one_empty()
    {
        var plan = Partitioner.Plan(Layers, Cpus(3), "auto");
        Assert.Equal(112, plan.Stages.Max(s => s.ParameterBytes));
        Assert.All(plan.Stages, s => Assert.True(s.LayerCount > 0));
        Assert.Equal(Layers.Length, plan.Stages.Sum(s => s.LayerCount));

        var every = Partitioner.Plan(Layers, Cpus(5), "auto");
        Assert.All(every.Stages, s => Assert.Equal(1, s.LayerCount));
    }

    [Fact]
    public void Auto_is_optimal_on_random_layer_sizes()
    {
        var random = new Random(5);
        for (var trial = 0; trial < 200; trial++)
        {
            var layers = Enumerable.Range(0, random.Next(1, 9)).Select(i => new StagedLayerInfo($"l{i}", 1, random.Next(1, 100))).ToArray();
            var stages = random.Next(1, layers.Length + 1);
            var plan = Partitioner.Plan(layers, Cpus(stages), "auto");
            Assert.Equal(BruteForceBest(layers.Select(l => l.ParameterBytes).ToArray(), stages), plan.Stages.Max(s => s.ParameterBytes));
        }
    }

    [Fact]
    public void Compute_balances_estimated_flops_instead_of_bytes()
    {
        StagedLayerInfo[] layers = [new("embed", 100, 400, 0), new("a", 10, 40, 20), new("b", 10, 40, 20), new("head", 100, 400, 40)];
        Assert.Equal([["embed", "a"], ["b", "head"]], Partitioner.Plan(layers, Cpus(2), "auto").Stages.Select(s => s.LayerNames));
        Assert.Equal([["embed", "a", "b"], ["head"]], Partitioner.Plan(layers, Cpus(2), "compute").Stages.Select(s => s.LayerNames));
        Assert.Contains("does not describe its compute", Assert.Throws<InvalidInputException>(() => Partitioner.Plan(Layers, Cpus(2), "compute")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(6, "auto", "6 stages but the model has only 5 layers")]
    [InlineData(2, "h.9", "unknown split point 'h.9'")]
    [InlineData(3, "h.1", "1 split points make 2 stages, but 3 devices were given")]
    [InlineData(2, "wte+wpe", "would leave a stage empty")]
    [InlineData(3, "h.2,h.1", "would leave a stage empty")]
    public void Impossible_plans_are_clear_errors(int devices, string splitPoints, string message) =>
        Assert.Contains(message, Assert.Throws<InvalidInputException>(() => Partitioner.Plan(Layers, Cpus(devices), splitPoints)).Message, StringComparison.Ordinal);

    [Fact]
    public void Describes_the_plan_stage_by_stage()
    {
        var text = Partitioner.Plan(Layers, [DeviceName.Cpu, DeviceName.Parse("cuda:1")], "h.2").Describe();
        Assert.Contains("stage 0 on cpu: wte+wpe .. h.1 (3 layers,", text, StringComparison.Ordinal);
        Assert.Contains("stage 1 on cuda:1: h.2 .. ln_f+head (2 layers,", text, StringComparison.Ordinal);
    }

    private static long BruteForceBest(long[] bytes, int stages)
    {
        long best = long.MaxValue;
        void Search(int from, int left, long largest)
        {
            if (left == 1)
            {
                best = Math.Min(best, Math.Max(largest, bytes.Skip(from).Sum()));
                return;
            }

            for (var end = from + 1; end <= bytes.Length - (left - 1); end++)
            {
                Search(end, left - 1, Math.Max(largest, bytes.Skip(from).Take(end - from).Sum()));
            }
        }

        Search(0, stages, 0);
        return best;
    }
}
