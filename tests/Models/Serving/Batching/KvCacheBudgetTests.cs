using DistributedInference.Models.Auto;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Tests.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Serving.Batching;

/// <summary>
/// How a device's KV cache is sized: a fixed size, what a <c>--max-memory</c> budget leaves after the weights and the
/// workspaces, or automatically from the memory free after the weights; and the engines started with a budget.
/// </summary>
public sealed class KvCacheBudgetTests
{
    private const long MiB = 1L << 20;
    private const long GiB = 1L << 30;

    [Fact]
    public void A_fixed_size_is_each_engines_and_must_fit_in_the_free_memory()
    {
        var budget = new KvCacheBudget(Bytes: 512 * MiB);
        Assert.Equal(512 * MiB, budget.Resolve(DeviceName.Cpu, 2, 3 * GiB, 256 * MiB, 8 * GiB).PerEngine);
        Assert.Equal(512 * MiB, budget.Resolve(DeviceName.Cpu, 1, 3 * GiB, 256 * MiB, -1).PerEngine);
        var e = Assert.Throws<InvalidInputException>(() => budget.Resolve(DeviceName.Cpu, 2, 3 * GiB, 256 * MiB, 900 * MiB));
        Assert.Equal("--kv-cache-memory 512 MiB gives cpu's KV cache 1.0 GiB, which with 512 MiB of workspace is more than the 900 MiB free there after the weights: give less", e.Message);
        Assert.Throws<InvalidInputException>(() => budget.Resolve(DeviceName.Cpu, 1, 3 * GiB, 256 * MiB, 700 * MiB));

        // What no sequence could use is not asked of the free memory.
        var (capped, how) = budget.Resolve(DeviceName.Cpu, 2, 3 * GiB, 256 * MiB, 900 * MiB, limitBytes: 16 * MiB);
        Assert.Equal(16 * MiB, capped);
        Assert.Equal("--kv-cache-memory 512 MiB, capped at 16 MiB: all its sequences at full context", how);
    }

    [Fact]
    public void A_budget_gives_the_cache_what_the_weights_and_the_workspaces_leave_shared_by_the_engines()
    {
        var budget = new KvCacheBudget(MaxMemory: MaxMemory.Parse("cpu=6GiB"));
        var (perEngine, how) = budget.Resolve(DeviceName.Cpu, 2, 2 * GiB, 256 * MiB, 16 * GiB);
        Assert.Equal(((6 * GiB) - (2 * GiB) - (512 * MiB)) / 2, perEngine);
        Assert.Contains("--max-memory cpu=6.0 GiB less 2.0 GiB of weights and 512 MiB of workspace, shared by 2 engines", how, StringComparison.Ordinal);

        var tight = Assert.Throws<InvalidInputException>(() => new KvCacheBudget(MaxMemory: MaxMemory.Parse("cpu=2GiB")).Resolve(DeviceName.Cpu, 1, 2 * GiB, 256 * MiB, 16 * GiB));
        Assert.Contains("leaves no KV cache: the weights take 2.0 GiB and 1 engine workspace(s) 256 MiB", tight.Message, StringComparison.Ordinal);

        var beyond = Assert.Throws<InvalidInputException>(() => budget.Resolve(DeviceName.Cpu, 1, 1 * GiB, 256 * MiB, 2 * GiB));
        Assert.Contains("is more than the 2.0 GiB free there after the weights", beyond.Message, StringComparison.Ordinal);

        var elsewhere = Assert.Throws<InvalidInputException>(() => budget.Resolve(DeviceName.Parse("cuda:0"), 1, GiB, 256 * MiB, -1));
        Assert.Contains("no budget for cuda:0", elsewhere.Message, StringComparison.Ordinal);

        Assert.Throws<InvalidInputException>(() => new KvCacheBudget(GiB, MaxMemory.Parse("cpu=6GiB")).Resolve(DeviceName.Cpu, 1, GiB, 0, 16 * GiB));
    }

    [Fact]
    public void Automatic_is_at_most_4_GiB_and_half_the_free_memory_and_1_GiB_where_free_memory_is_unknown()
    {
        Assert.Equal(4 * GiB, KvCacheBudget.Auto.Resolve(DeviceName.Cpu, 1, GiB, 256 * MiB, 20 * GiB).PerEngine);
        Assert.Equal(3 * GiB / 2, KvCacheBudget.Auto.Resolve(DeviceName.Cpu, 1, GiB, 256 * MiB, 3 * GiB).PerEngine);
        Assert.Equal(2 * GiB, KvCacheBudget.Auto.Resolve(DeviceName.Cpu, 2, GiB, 256 * MiB, 20 * GiB).PerEngine);
        var starved = Assert.Throws<InvalidInputException>(() => KvCacheBudget.Auto.Resolve(DeviceName.Cpu, 1, GiB, 256 * MiB, MiB));
        Assert.Contains("too little for an automatic KV cache", starved.Message, StringComparison.Ordinal);
        var (unknown, how) = KvCacheBudget.Auto.Resolve(DeviceName.Parse("cuda:0"), 1, GiB, 256 * MiB, -1);
        Assert.Equal(GiB, unknown);
        Assert.Equal("auto: 1.0 GiB (free memory on cuda:0 is unknown: give --kv-cache-memory or --max-memory)", how);
    }

    [Fact]
    public void Engines_started_with_a_budget_hold_the_blocks_it_leaves_after_the_loaded_weights()
    {
        LibTorch.Initialize();
        using var decoders = new DeviceDecoders(AutoModelSource.Resolve(LlamaFixtures.ModelFolder("llama3-tiny")), ScalarType.Float32);
        var cpu = DeviceName.Cpu;
        var weights = DeviceEngines.WeightBytes(decoders.On(cpu));
        Assert.True(weights > 0);
        var position = PagedKvStore.BytesPerPosition(decoders.Model(cpu), CPU);
        var workspace = position * 64;
        const int BlockSize = 4;

        // Two engines on the CPU share its weights and split what the budget leaves: 10 blocks each, and a little over.
        var budget = weights + (2 * workspace) + (2 * 10 * BlockSize * position) + (BlockSize * position);
        var options = new ContinuousBatchingOptions(BlockSize, WorkspaceBytes: workspace, Budget: new KvCacheBudget(MaxMemory: MaxMemory.Parse($"cpu={budget}")));
        using (var engines = DeviceEngines.Start(decoders, [cpu, cpu], options, contextLength: 512))
        {
            Assert.Equal([10, 10], engines.Engines.Select(e => e.Load.TotalBlocks));
            Assert.StartsWith("--max-memory cpu=", engines.CacheSizing[cpu], StringComparison.Ordinal);
            Assert.Equal(10 * BlockSize, engines.MaxPositions);
        }

        var tooSmall = options with { Budget = new KvCacheBudget(MaxMemory: MaxMemory.Parse($"cpu={weights}")) };
        var e = Assert.Throws<InvalidInputException>(() => DeviceEngines.Start(decoders, [cpu], tooSmall, contextLength: 512));
        Assert.Contains("leaves no KV cache", e.Message, StringComparison.Ordinal);

        // Without a budget the size is as given.
        using var given = DeviceEngines.Start(decoders, [cpu], new ContinuousBatchingOptions(BlockSize, 7 * BlockSize * position, WorkspaceBytes: workspace), contextLength: 512);
        Assert.Equal(7, given.Engines[0].Load.TotalBlocks);
        Assert.Equal("as given", given.CacheSizing[cpu]);
    }
}
