using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Tests.Pipeline;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>
/// Pipelined generation with a stage on each of three nodes (steps cross the wire every token); a node shut down
/// mid-generation: the pipeline is planned again over the two left and the micro-batches resume where they were.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterGenerationTests : IAsyncLifetime
{
    private static readonly ModelIdentity Model = ModelIdentity.Of(PipelineGenerationTests.Folder("qwen3-tiny"), null);

    private readonly ITestOutputHelper _output;
    private InProcessCluster? _cluster;

    public ClusterGenerationTests(ITestOutputHelper output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    private static LlamaSource Source => LlamaSource.Resolve(PipelineGenerationTests.Folder("qwen3-tiny"));

    public async Task InitializeAsync() =>
        _cluster = await InProcessCluster.StartAsync(3, model: null, stages: new ServedStages(Model, InferenceTask.Generate, () => new LlamaStagedModel(Source)));

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task Greedy_ids_across_three_nodes_match_the_fixture()
    {
        await using var pipeline = await ClusterPipeline.StartAsync(_cluster!.Nodes[0], Model, InferenceTask.Generate, "auto", Precision.Fp32, nodes: 3, log: _output.WriteLine);
        Assert.Equal(3, pipeline.Stages.Select(s => s.Path.Address).Distinct().Count());
        Assert.All(pipeline.Plan.Hosts, host => Assert.True(host.Info.FreeBytes![0] > 0));
        var result = await PipelineGeneration.GenerateAsync(
            pipeline, PipelineGenerationTests.Expected("qwen3-tiny", "greedy_input_ids"), PipelineGenerationTests.Expected("qwen3-tiny", "greedy_attention_mask"),
            null, new GenerationOptions(MaxNewTokens: 10), [], 0, numChunks: 2);
        Assert.Equal(PipelineGenerationTests.Expected("qwen3-tiny", "greedy_output").data<long>().ToArray(), result.OutputIds.data<long>().ToArray());
    }

    [Fact]
    public async Task A_node_shut_down_mid_generation_is_planned_around_and_the_rows_resume()
    {
        var ids = PipelineGenerationTests.Expected("qwen3-tiny", "greedy_input_ids");
        var mask = PipelineGenerationTests.Expected("qwen3-tiny", "greedy_attention_mask");
        var options = new GenerationOptions(MaxNewTokens: 120, DoSample: true, TopK: 20, Seed: 4);
        using var model = Source.CreateModel(CPU, ScalarType.Float32);
        using var oneDevice = GenerationLoop.Generate(model, ids, mask, options);

        await using var pipeline = await ClusterPipeline.StartAsync(_cluster!.Nodes[0], Model, InferenceTask.Generate, "auto", Precision.Fp32, nodes: 3, log: _output.WriteLine);
        var steps = 0;
        var shutdown = new Lazy<Task>(() => _cluster.Nodes[2].Terminate());
        var generation = PipelineGeneration.GenerateAsync(pipeline, ids, mask, null, options, [], 0, numChunks: 2, onStepLogits: (_, _) =>
        {
            // From the 40th step on, each micro-batch waits for the third node to be gone: its next step finds it lost.
            if (Interlocked.Increment(ref steps) >= 40 && !shutdown.Value.IsCompleted)
            {
                shutdown.Value.Wait(TimeSpan.FromSeconds(30));
            }
        });

        var result = await generation.WaitAsync(TimeSpan.FromSeconds(120));
        _output.WriteLine($"{steps} steps, {result.Metrics.Resumes} micro-batch(es) resumed, {pipeline.Replans} re-plan(s)");
        Assert.True(pipeline.Replans >= 1);
        Assert.True(result.Metrics.Resumes >= 1);
        Assert.Equal(2, pipeline.Stages.Count);
        Assert.Equal(oneDevice.data<long>().ToArray(), result.OutputIds.narrow(1, 0, oneDevice.shape[1]).contiguous().data<long>().ToArray());
    }
}
