using DistributedInference.Host.Inference;
using DistributedInference.Host.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>
/// <c>di serve</c>'s KV cache sizing: <c>--max-memory</c> (what the budget leaves after the weights and the workspace),
/// <c>--kv-cache-memory</c>, or automatic; the start line says which; the two flags together, and <c>--max-memory</c>
/// with <c>--mode pipeline</c>, are refused in one line.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class KvCacheSizingTests
{
    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    [Fact]
    public async Task The_start_line_says_how_the_cache_was_sized()
    {
        LibTorch.Initialize();
        var model = ServedModel.Load(Model("llama3-tiny"), null, null, 0);
        var budget = new ContinuousBatchingOptions(Budget: new KvCacheBudget(MaxMemory: MaxMemory.Parse("cpu=1GiB")));
        var options = new ServeOptions(Model("llama3-tiny"), Port: 0, Batching: budget);
        await using (var backend = await ServingBackend.StartAsync(model, options, CancellationToken.None))
        {
            Assert.Contains("cpu: --max-memory cpu=1.0 GiB less ", backend.Describe(), StringComparison.Ordinal);
        }

        var auto = options with { Batching = new ContinuousBatchingOptions(Budget: KvCacheBudget.Auto) };
        await using (var backend = await ServingBackend.StartAsync(ServedModel.Load(Model("llama3-tiny"), null, null, 0), auto, CancellationToken.None))
        {
            Assert.Contains("cpu: auto: the smaller of 4.0 GiB and half the ", backend.Describe(), StringComparison.Ordinal);
        }

        var pipeline = options with { Devices = "cpu,cpu", Mode = Mode.Pipeline };
        var e = await Assert.ThrowsAsync<InvalidInputException>(() => ServingBackend.StartAsync(ServedModel.Load(Model("llama3-tiny"), null, null, 0), pipeline, CancellationToken.None));
        Assert.Contains("--mode pipeline", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task A_size_and_a_budget_together_are_refused_before_loading()
    {
        var (exit, _, stderr) = await DiRunner.Run("serve", "--model", Model("llama3-tiny"), "--port", "0", "--kv-cache-memory", "64", "--max-memory", "cpu=1GiB");
        Assert.Equal(2, exit);
        Assert.Contains("--kv-cache-memory and --max-memory both size the KV cache: give one", stderr, StringComparison.Ordinal);

        (exit, _, stderr) = await DiRunner.Run("serve", "--model", Model("llama3-tiny"), "--port", "0", "--max-memory", "cpu=lots");
        Assert.Equal(2, exit);
        Assert.Contains("--max-memory: 'cpu=lots' is not DEVICE=SIZE", stderr, StringComparison.Ordinal);

        (exit, _, stderr) = await DiRunner.Run("serve", "--model", Model("llama3-tiny"), "--port", "0", "--kv-cache-memory", "0");
        Assert.Equal(2, exit);
        Assert.Contains("--kv-cache-memory must be a positive number of MiB (at most 2^40), got 0", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_flags_are_refused_where_no_engine_of_this_process_would_use_them()
    {
        LibTorch.Initialize();
        var sized = new ContinuousBatchingOptions(Budget: new KvCacheBudget(Bytes: 64L << 20));
        foreach (var options in new[]
        {
            new ServeOptions(Model("llama3-tiny"), Port: 0, Batching: sized, ContinuousBatching: false),
            new ServeOptions(Model("llama3-tiny"), Port: 0, Batching: sized, Join: ["127.0.0.1:1"]),
            new ServeOptions(Model("minilm-tiny"), Port: 0, Batching: sized),
        })
        {
            var model = ServedModel.Load(options.Model, null, null, 0);
            var e = await Assert.ThrowsAsync<InvalidInputException>(() => ServingBackend.StartAsync(model, options, CancellationToken.None));
            Assert.StartsWith("--kv-cache-memory and --max-memory size the continuous-batching KV cache", e.Message, StringComparison.Ordinal);
        }

        // A node: only with --serve requests, and a budget for each of its devices, said before it joins anything.
        var (exit, _, stderr) = await DiRunner.Run("node", "--port", "0", "--serve", "replica", "--model", Model("llama3-tiny"), "--kv-cache-memory", "64");
        Assert.Equal(2, exit);
        Assert.Contains("they need --serve requests", stderr, StringComparison.Ordinal);
        (exit, _, stderr) = await DiRunner.Run("node", "--port", "0", "--serve", "requests", "--model", Model("llama3-tiny"), "--max-memory", "cuda:0=1GiB");
        Assert.Equal(2, exit);
        Assert.Contains("--max-memory gives no budget for cpu", stderr, StringComparison.Ordinal);
    }
}
