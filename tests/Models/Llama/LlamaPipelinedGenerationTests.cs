using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

/// <summary>
/// Generation cut into stages that each keep the key/value cache of their own layers (<see cref="StageDecoder"/>),
/// driven by a <see cref="SequenceGroup"/>: the fixtures' greedy ids and step logits, and replica mode's sampled ids.
/// </summary>
public sealed class LlamaPipelinedGenerationTests
{
    private readonly ITestOutputHelper _output;

    public LlamaPipelinedGenerationTests(ITestOutputHelper output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    [Theory]
    [MemberData(nameof(LlamaFixtures.Names), MemberType = typeof(LlamaFixtures))]
    public void Greedy_ids_and_step_logits_through_three_stages_match_the_fixture(string name)
    {
        var staged = new LlamaStagedModel(LlamaSource.Resolve(LlamaFixtures.ModelFolder(name)));
        using var group = new SequenceGroup("g", LlamaFixtures.Expected(name, "greedy_input_ids"), LlamaFixtures.Expected(name, "greedy_attention_mask"), [0, 1], new GenerationOptions(MaxNewTokens: 10), [], 0);
        var steps = Run(staged, [2, 1, staged.Layers.Count - 3], group);

        Assert.Equal(LlamaFixtures.Expected(name, "greedy_output").data<long>().ToArray(), group.Output.narrow(1, 0, 17).data<long>().ToArray());
        using var stepLogits = stack(steps, 1);
        var diff = Fixtures.AssertClose(LlamaFixtures.Expected(name, "greedy_step_logits"), stepLogits);
        _output.WriteLine($"{name}: 3 stages, greedy_step_logits max |diff| = {diff:E2}");
        steps.ForEach(t => t.Dispose());
    }

    [Fact]
    public void A_finished_row_leaves_and_the_others_go_on_unchanged()
    {
        const string name = "qwen3-tiny";
        var expected = LlamaFixtures.Expected(name, "greedy_output");
        var endOfRow0 = expected[0, 7 + 3].ToInt64();
        var staged = new LlamaStagedModel(LlamaSource.Resolve(LlamaFixtures.ModelFolder(name)));
        using var group = new SequenceGroup("g", LlamaFixtures.Expected(name, "greedy_input_ids"), LlamaFixtures.Expected(name, "greedy_attention_mask"), [0, 1], new GenerationOptions(MaxNewTokens: 10), [endOfRow0], -1);
        var decoders = new List<StageDecoder>();
        Run(staged, [3, staged.Layers.Count - 3], group, decoders);

        var output = group.Output;
        var row0 = expected[0].data<long>().ToArray();
        var firstEnd = Array.IndexOf(row0, endOfRow0, 7);
        Assert.Equal(row0.Take(firstEnd + 1), output[0].data<long>().Take(firstEnd + 1));
        Assert.All(output[0].data<long>().Skip(firstEnd + 1), id => Assert.Equal(-1, id));
        var row1 = expected[1].data<long>().ToArray();
        var row1End = Array.IndexOf(row1, endOfRow0, 7);
        var compared = row1End < 0 ? 17 : row1End + 1;
        Assert.Equal(row1.Take(compared), output[1].data<long>().Take(compared));
        Assert.All(decoders, d => Assert.Equal(0, d.Sequences));
    }

    [Theory]
    [InlineData("llama3-tiny", true)]
    [InlineData("qwen3-tiny", true)]
    [InlineData("qwen3-tiny", false)]
    public void Sampled_ids_equal_the_one_device_loop_with_the_same_seed(string name, bool rowSeeds)
    {
        long[]? seeds = rowSeeds ? [4, 9] : null;
        var source = LlamaSource.Resolve(LlamaFixtures.ModelFolder(name));
        var options = new GenerationOptions(MaxNewTokens: 12, DoSample: true, Temperature: 0.9, TopK: 20, TopP: 0.95, Seed: 11);
        var ids = LlamaFixtures.Expected(name, "greedy_input_ids");
        var mask = LlamaFixtures.Expected(name, "greedy_attention_mask");
        using var model = source.CreateModel(CPU, ScalarType.Float32);
        using var replica = GenerationLoop.Generate(model, ids, mask, options, seeds);

        using var group = new SequenceGroup("g", ids, mask, seeds, options, source.EndOfSequenceIds, source.PadTokenId);
        var staged = new LlamaStagedModel(source);
        Run(staged, [1, 2, staged.Layers.Count - 3], group).ForEach(t => t.Dispose());

        Assert.Equal(replica.data<long>().ToArray(), group.Output.narrow(1, 0, replica.shape[1]).data<long>().ToArray());
        Assert.All(group.Output.data<long>().ToArray().Chunk((int)group.Output.shape[1]).SelectMany(row => row.Skip((int)replica.shape[1])), id => Assert.Equal(source.PadTokenId, id));
    }

    // Runs the group through stages of the given layer counts, each with its own decoder; returns each step's logits.
    private static List<Tensor> Run(LlamaStagedModel staged, int[] cuts, SequenceGroup group, List<StageDecoder>? decodersOut = null)
    {
        var stages = new List<ModelStage>();
        var first = 0;
        foreach (var count in cuts)
        {
            stages.Add(staged.CreateStage(first, count, CPU, ScalarType.Float32));
            first += count;
        }

        Assert.Equal(staged.Layers.Count, first);
        var decoders = stages.Select(s => new StageDecoder(s)).ToList();
        decodersOut?.AddRange(decoders);
        var logits = new List<Tensor>();
        var step = group.Start();
        while (true)
        {
            var input = step.Hidden;
            for (var s = 0; s < decoders.Count; s++)
            {
                var output = decoders[s].Run(step, last: s == decoders.Count - 1);
                if (s > 0)
                {
                    step.Hidden.Dispose();
                }

                step = output;
            }

            logits.Add(step.Hidden.clone());
            var next = group.Next(step.Hidden);
            step.Hidden.Dispose();
            if (next is null)
            {
                break;
            }

            step = next;
        }

        var release = group.Release();
        decoders.ForEach(d => d.Run(release, last: false));
        Assert.All(decoders, d => Assert.Equal(0, d.Sequences));
        stages.ForEach(s => s.Dispose());
        return logits;
    }
}
