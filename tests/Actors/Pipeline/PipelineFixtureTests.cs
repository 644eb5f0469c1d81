using Akka.Actor;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Pipeline;

/// <summary>Pipeline mode on the Hugging Face gpt2-tiny fixture.</summary>
public sealed class PipelineFixtureTests
{
    public PipelineFixtureTests() => LibTorch.Initialize();

    private static Gpt2LMHeadModel LanguageModel() => Gpt2Source.Resolve(Fixtures.Path("lm")).CreateLanguageModel(CPU, ScalarType.Float32);

    private static DeviceName[] Cpus(int n) => Enumerable.Repeat(DeviceName.Cpu, n).ToArray();

    [Theory]
    [InlineData(2, "h.1", 2)]
    [InlineData(3, "auto", 3)]
    [InlineData(3, "h.0,h.1", 4)]
    [InlineData(2, "h.1", 3)]
    public async Task Logits_match_the_unsplit_model_and_transformers(int stages, string splitPoints, int numChunks)
    {
        using var model = LanguageModel();
        var ids = Fixtures.Expected("input_ids");
        using var unsplit = model.Logits(ids);
        var plan = Partitioner.Plan(new Gpt2StagedModel(model).Layers, Cpus(stages), splitPoints);
        await using var pipeline = await PipelineRuntime.StartAsync(new Gpt2StagedModel(model), plan, ScalarType.Float32);

        var completed = await pipeline.RunAsync(new Dictionary<string, object> { ["input_ids"] = ids }, numChunks);

        var logits = (Tensor)completed.Output;
        Assert.True(Fixtures.MaxAbsDiff(logits, unsplit) <= 1e-5);
        Assert.True(Fixtures.MaxAbsDiff(logits, Fixtures.Expected("lm_logits")) <= 1e-4);
        Assert.Equal(stages, completed.Metrics.Stages.Count);
        Assert.All(completed.Metrics.Stages, s => Assert.Equal(Math.Min(numChunks, 4), s.MicroBatches));
    }

    [Fact]
    public void Auto_cuts_the_fixture_into_embedding_blocks_and_head()
    {
        using var model = LanguageModel();
        var plan = Partitioner.Plan(new Gpt2StagedModel(model).Layers, Cpus(3), "auto");
        Assert.Equal([["wte+wpe"], ["h.0", "h.1"], ["ln_f+head"]], plan.Stages.Select(s => s.LayerNames));
    }

    [Theory]
    [InlineData(1, "hidden_0")]
    [InlineData(2, "hidden_1")]
    public async Task Each_stage_boundary_carries_the_hidden_state_of_transformers(int layers, string expected)
    {
        using var model = LanguageModel();
        var staged = new Gpt2StagedModel(model);
        // A pipeline cut right after the boundary: its last stage's output is the boundary's activation.
        var work = Enumerable.Range(0, layers).Select(i => (Func<IStageWork>)(() => new ModelStageWork(staged.CreateStage(i, 1, CPU, ScalarType.Float32), last: i == layers - 1))).ToList();
        await using var pipeline = await PipelineRuntime.StartAsync(work);
        var completed = await pipeline.RunAsync(Fixtures.Expected("input_ids"), numChunks: 3);
        Assert.True(Fixtures.MaxAbsDiff((Tensor)completed.Output, Fixtures.Expected(expected)) <= 1e-4);
    }

    [Fact]
    public async Task Classifier_pipelines_read_the_last_real_token()
    {
        using var model = Gpt2Source.Resolve(Fixtures.Path("cls")).CreateClassifier(CPU, ScalarType.Float32);
        var staged = new Gpt2StagedModel(model);
        await using var pipeline = await PipelineRuntime.StartAsync(staged, Partitioner.Plan(staged.Layers, Cpus(2), "auto"), ScalarType.Float32);
        var completed = await pipeline.RunAsync(Fixtures.Expected("cls_input_ids"), numChunks: 3);
        Assert.True(Fixtures.MaxAbsDiff((Tensor)completed.Output, Fixtures.Expected("cls_logits")) <= 1e-4);
    }

    [Fact]
    public async Task Sequence_length_may_change_between_calls_and_calls_may_overlap()
    {
        using var model = LanguageModel();
        var staged = new Gpt2StagedModel(model);
        await using var pipeline = await PipelineRuntime.StartAsync(staged, Partitioner.Plan(staged.Layers, Cpus(2), "h.1"), ScalarType.Float32);
        var ids = Fixtures.Expected("input_ids");
        using var shortIds = ids.narrow(1, 0, 9).contiguous();
        var calls = new[] { pipeline.RunAsync(ids, 2), pipeline.RunAsync(shortIds, 4), pipeline.RunAsync(ids.narrow(0, 1, 1), 2) };
        var results = await Task.WhenAll(calls);

        Assert.True(Fixtures.MaxAbsDiff((Tensor)results[0].Output, Fixtures.Expected("lm_logits")) <= 1e-4);
        using var expectedShort = model.Logits(shortIds);
        Assert.True(Fixtures.MaxAbsDiff((Tensor)results[1].Output, expectedShort) <= 1e-5);
        Assert.True(Fixtures.MaxAbsDiff((Tensor)results[2].Output, Fixtures.Expected("lm_logits").narrow(0, 1, 1)) <= 1e-4);
    }

    [Fact]
    public async Task Gather_output_hands_the_output_to_every_stage()
    {
        using var model = LanguageModel();
        var staged = new Gpt2StagedModel(model);
        await using var pipeline = await PipelineRuntime.StartAsync(staged, Partitioner.Plan(staged.Layers, Cpus(2), "auto"), ScalarType.Float32);
        var completed = await pipeline.RunAsync(Fixtures.Expected("input_ids"), gatherOutput: true);
        using var output = completed.Output;
        foreach (var stage in pipeline.Stages)
        {
            // Each stage has its own copy (and answers with a copy of it): equal values, never the caller's tensor.
            var gathered = await stage.Ask<GatheredOutputs>(GetGatheredOutputs.Instance, TimeSpan.FromSeconds(10));
            using var copy = Assert.Single(gathered.Outputs).Output;
            Assert.NotSame(output.Value, copy.Value);
            Assert.Equal(0, Fixtures.MaxAbsDiff((Tensor)copy, (Tensor)output));
        }
    }

    [Fact]
    public async Task Bad_rows_fail_the_call_with_a_clear_reason()
    {
        using var model = LanguageModel();
        var staged = new Gpt2StagedModel(model);
        await using var pipeline = await PipelineRuntime.StartAsync(staged, Partitioner.Plan(staged.Layers, Cpus(2), "auto"), ScalarType.Float32);
        var error = await Assert.ThrowsAsync<InvalidInputException>(() => pipeline.RunAsync("not rows"));
        Assert.StartsWith("cannot split a string", error.Message, StringComparison.Ordinal);
        var ok = await pipeline.RunAsync(Fixtures.Expected("input_ids"));
        Assert.True(Fixtures.MaxAbsDiff((Tensor)ok.Output, Fixtures.Expected("lm_logits")) <= 1e-4);
    }

    [Fact]
    public async Task Any_staged_model_pipelines_a_host_apps_own_layers()
    {
        static nn.Module<Tensor, Tensor> Layer(int i, int inputs, int outputs)
        {
            var linear = nn.Linear(inputs, outputs);
            using (no_grad())
            {
                foreach (var p in linear.parameters())
                {
                    p.copy_(arange(p.NumberOfElements, ScalarType.Float32).add(i).mul(0.29).sin().view(p.shape));
                }
            }

            return nn.Sequential(linear, nn.Tanh());
        }

        var staged = new SequentialStagedModel([("in", () => Layer(0, 6, 8)), ("mid", () => Layer(1, 8, 8)), ("out", () => Layer(2, 8, 3))]);
        var plan = Partitioner.Plan(staged.Layers, Cpus(2), "auto");
        await using var pipeline = await PipelineRuntime.StartAsync(staged, plan, ScalarType.Float32);
        var input = arange(30, ScalarType.Float32).mul(0.1).cos().view(5, 6);

        var completed = await pipeline.RunAsync(input, numChunks: 2);

        using var whole = staged.CreateStage(0, 3, CPU, ScalarType.Float32);
        var expected = whole.Run(StagedBatch.FromTokens(input)).Hidden;
        Assert.True(Fixtures.MaxAbsDiff((Tensor)completed.Output, expected) <= 1e-6);
    }
}
