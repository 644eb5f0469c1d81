using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tests.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Staging;

/// <summary>
/// Paged generation steps through two stages of a fixture decoder (each stage's <see cref="StageDecoder"/> with a paged
/// store of its own layers) give exactly the logits of the whole model's paged pass over the same plan, chunked prefill
/// and decode rows of different pasts together; a stage that holds no store of a pool says so instead of computing.
/// </summary>
public sealed class PagedStageDecoderTests
{
    private const int BlockSize = 4;
    private const int Blocks = 64;

    [Theory]
    [InlineData("llama3-tiny")]
    [InlineData("qwen3-tiny")]
    public void Two_stages_give_the_whole_models_logits_exactly(string fixture)
    {
        DistributedInference.Models.Runtime.LibTorch.Initialize();
        var source = LlamaSource.Resolve(LlamaFixtures.ModelFolder(fixture));
        using var model = source.CreateModel(CPU, ScalarType.Float32);
        var staged = new LlamaStagedModel(source);
        var split = staged.Layers.Count / 2;
        using var firstStage = staged.CreateStage(0, split, CPU, ScalarType.Float32);
        using var secondStage = staged.CreateStage(split, staged.Layers.Count - split, CPU, ScalarType.Float32);
        using var first = new StageDecoder(firstStage);
        using var second = new StageDecoder(secondStage);
        using var whole = new LocalModelExecutor(model, CPU);
        whole.InitializeCache(Blocks, BlockSize);

        var scheduler = new IterationScheduler(new KvBlockPool(Blocks, BlockSize), new IterationSchedulerOptions(MaxSequences: 4, MaxTokensPerStep: 32, PrefillChunk: 6));
        var random = new Random(3);
        for (var i = 0; i < 4; i++)
        {
            var prompt = Enumerable.Range(0, 5 + (i * 4)).Select(_ => (long)random.Next(3, model.VocabSize)).ToList();
            Assert.True(scheduler.TryAdd(new BatchSequence($"s{i}", prompt, 6)));
        }

        var create = true;
        var passes = 0;
        using var inference = inference_mode();
        while (!scheduler.IsIdle)
        {
            var step = scheduler.Schedule();
            foreach (var group in step.Chunks.GroupBy(c => c.Count).Select(g => g.ToList()))
            {
                using var scope = NewDisposeScope();
                var expected = whole.ExecuteModel(group);
                var actual = Staged(first, second, group, create);
                create = false;
                passes++;
                Assert.Equal(expected.shape, actual.shape);
                Assert.True(expected.eq(actual).all().item<bool>(), $"pass {passes}: max |diff| {(expected - actual).abs().max().item<float>():E2}");
                var tokens = expected.argmax(-1).data<long>().ToArray();
                for (var r = 0; r < group.Count; r++)
                {
                    scheduler.Completed(group[r], group[r].SamplesToken ? tokens[r] : null);
                    if (group[r].Sequence.OutputLength >= group[r].Sequence.MaxNewTokens)
                    {
                        scheduler.Finish(group[r].Sequence);
                    }
                }
            }
        }

        Assert.True(passes >= 8, $"{passes} passes");
        Assert.Equal(1, first.Pools);
    }

    [Fact]
    public void A_stage_without_the_pool_computes_nothing_and_says_the_step_is_lost()
    {
        DistributedInference.Models.Runtime.LibTorch.Initialize();
        var source = LlamaSource.Resolve(LlamaFixtures.ModelFolder("llama3-tiny"));
        var staged = new LlamaStagedModel(source);
        using var layers = staged.CreateStage(0, 2, CPU, ScalarType.Float32);
        using var stage = new StageDecoder(layers);
        var sequence = new BatchSequence("s", [5, 6, 7], 4);
        var pool = new KvBlockPool(8, BlockSize);
        Assert.True(pool.TryAllocate(1, sequence.Blocks));
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 5, 6, 7 }).view(1, 3);
        var output = stage.Run(Step([new ScheduledChunk(sequence, 0, 3)], ids, create: false), last: false);

        Assert.True(output.Lost);
        Assert.Same(ids, output.Hidden);
        Assert.Equal(0, stage.Pools);
    }

    private static Tensor Staged(StageDecoder first, StageDecoder second, IReadOnlyList<ScheduledChunk> group, bool create)
    {
        var (ids, _) = ScheduledChunk.Inputs(group);
        var between = first.Run(Step(group, tensor(ids).view(group.Count, group[0].Count), create), last: false);
        Assert.False(between.Lost);
        return second.Run(between, last: true).Hidden;
    }

    private static GenerationStep Step(IReadOnlyList<ScheduledChunk> group, Tensor ids, bool create)
    {
        var length = group[0].Count;
        var (_, positions) = ScheduledChunk.Inputs(group);
        var plan = PagedKvPlan.Of(group.Select(c => ((IReadOnlyList<int>)c.Sequence.Blocks, c.Start)).ToList(), length, BlockSize);
        return new GenerationStep(
            "pool",
            ids,
            tensor(positions).view(group.Count, length),
            plan.MaskTensor(),
            0,
            Paged: new PagedStep(plan.PastSlotsTensor(), plan.NewSlotsTensor(), Blocks, BlockSize, create));
    }
}
