using Akka.Actor;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Pipeline;

/// <summary>
/// Pipelined generation in one process: stage actors that keep their own layers' key/value caches, micro-batches that
/// loop through them; the Llama-family fixtures' greedy ids and step logits, replica mode's sampled ids.
/// </summary>
public sealed class PipelineGenerationTests
{
    private readonly ITestOutputHelper _output;

    public PipelineGenerationTests(ITestOutputHelper output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    public static string Folder(string fixture) => Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "model");

    public static Tensor Expected(string fixture, string name) =>
        SafeTensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "expected.safetensors")).Read(name);

    public static async Task<PipelineRuntime> Start(LlamaSource source, int stages)
    {
        var staged = new LlamaStagedModel(source);
        var plan = Partitioner.Plan(staged.Layers, Enumerable.Repeat(DeviceName.Cpu, stages).ToList(), "auto");
        return await PipelineRuntime.StartAsync(staged, plan, ScalarType.Float32);
    }

    [Theory]
    [InlineData("llama3-tiny", 2)]
    [InlineData("llama3-tiny", 1)]
    [InlineData("qwen3-tiny", 2)]
    public async Task Greedy_ids_and_step_logits_through_three_stages_match_the_fixture(string fixture, int numChunks)
    {
        var source = LlamaSource.Resolve(Folder(fixture));
        await using var pipeline = await Start(source, 3);
        var steps = new Tensor[2, 10];
        var counts = new int[2];
        var result = await PipelineGeneration.GenerateAsync(
            pipeline, Expected(fixture, "greedy_input_ids"), Expected(fixture, "greedy_attention_mask"), null,
            new GenerationOptions(MaxNewTokens: 10), [], source.PadTokenId, numChunks,
            (rows, logits) =>
            {
                lock (steps)
                {
                    for (var i = 0; i < rows.Count; i++)
                    {
                        steps[rows[i], counts[rows[i]]++] = logits[i].clone();
                    }
                }
            });

        Assert.Equal(Expected(fixture, "greedy_output").data<long>().ToArray(), result.OutputIds.data<long>().ToArray());
        var expected = Expected(fixture, "greedy_step_logits");
        var diff = Enumerable.Range(0, 2).SelectMany(r => Enumerable.Range(0, 10).Select(s =>
            (steps[r, s] - expected[r, s]).abs().max().ToDouble())).Max();
        _output.WriteLine($"{fixture}, 3 stages, {numChunks} micro-batch(es): step logits max |diff| {diff:E2}; {result.Metrics.NewTokens} tokens, " +
                          $"{result.Metrics.TokensPerSecond:F0} tokens/s, TPOT {result.Metrics.TimePerOutputToken.TotalMilliseconds:F1} ms");
        Assert.True(diff <= 1e-4, $"step logits max |diff| {diff:E3}");
        Assert.Equal(20, result.Metrics.NewTokens);
        Assert.Equal(numChunks, result.Metrics.MicroBatches);
    }

    [Theory]
    [InlineData("llama3-tiny", 3)]
    [InlineData("qwen3-tiny", 2)]
    public async Task Sampled_ids_equal_replica_mode_with_the_same_seed(string fixture, int numChunks)
    {
        var source = LlamaSource.Resolve(Folder(fixture));
        var ids = cat([Expected(fixture, "greedy_input_ids"), Expected(fixture, "greedy_input_ids").flip(0)], 0);
        var mask = cat([Expected(fixture, "greedy_attention_mask"), Expected(fixture, "greedy_attention_mask").flip(0)], 0);
        var options = new GenerationOptions(MaxNewTokens: 16, DoSample: true, Temperature: 0.8, TopK: 30, TopP: 0.9, Seed: 21);
        using var model = source.CreateModel(CPU, ScalarType.Float32);
        using var replica = GenerationLoop.Generate(model, ids, mask, options, [10, 11, 12, 13]);

        await using var pipeline = await Start(source, 3);
        var result = await PipelineGeneration.GenerateAsync(pipeline, ids, mask, tensor(new long[] { 10, 11, 12, 13 }), options, source.EndOfSequenceIds, source.PadTokenId, numChunks);

        var width = (int)replica.shape[1];
        Assert.Equal(replica.data<long>().ToArray(), result.OutputIds.narrow(1, 0, width).contiguous().data<long>().ToArray());
    }

    [Fact]
    public async Task A_stage_stopped_mid_generation_fails_the_call_with_a_clear_error()
    {
        var source = LlamaSource.Resolve(Folder("qwen3-tiny"));
        await using var pipeline = await Start(source, 3);
        var ids = Expected("qwen3-tiny", "greedy_input_ids");
        var stepsSeen = 0;
        var generation = PipelineGeneration.GenerateAsync(
            pipeline, ids, Expected("qwen3-tiny", "greedy_attention_mask"), null, new GenerationOptions(MaxNewTokens: 400), [], 0, 2,
            (_, _) =>
            {
                if (Interlocked.Increment(ref stepsSeen) == 10)
                {
                    pipeline.Stages[1].Tell(PoisonPill.Instance);
                }
            });

        var e = await Assert.ThrowsAsync<JobFailedException>(() => generation.WaitAsync(TimeSpan.FromSeconds(60)));
        _output.WriteLine(e.Message);
        Assert.Contains("stage 1", e.Message);
    }
}
