using DistributedInference.Models.Generation;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tests.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Generation;

/// <summary>The shared generation loop: padding, end-of-sequence handling, sampling reproducibility.</summary>
public sealed class GenerationLoopTests
{
    private const string Llama3 = "llama3-tiny";
    private const string Mistral = "mistral-tiny";

    public GenerationLoopTests() => LibTorch.Initialize();

    private static LlamaForCausalLM Model(string name = Llama3) =>
        LlamaSource.Resolve(LlamaFixtures.ModelFolder(name)).CreateModel(CPU, ScalarType.Float32);

    private static long[] Row(Tensor t, int row, int from = 0) => t[row].data<long>().Skip(from).ToArray();

    [Fact]
    public void Gpt2_right_padded_row_is_moved_left_and_generates_what_it_generates_alone()
    {
        using var model = Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, ScalarType.Float32);
        using var ids = tensor(new long[] { 36, 0, 0, 0, 11, 12, 13, 14 }, [2, 4]);
        using var mask = tensor(new long[] { 1, 0, 0, 0, 1, 1, 1, 1 }, [2, 4]);
        using var together = GreedySearch.Generate(model, ids, mask, 6);
        using var alone = GreedySearch.Generate(model, tensor(new long[] { 36 }, [1, 1]), null, 6);
        using var second = GreedySearch.Generate(model, ids[1..2], null, 6);
        Assert.Equal([0L, 0, 0, .. Row(alone, 0)], Row(together, 0));
        Assert.Equal(Row(second, 0), Row(together, 1));
    }

    [Fact]
    public void Llama_batched_greedy_rows_equal_each_row_alone()
    {
        using var model = Model("qwen2-tiny");
        var ids = LlamaFixtures.Expected("qwen2-tiny", "input_ids");
        var mask = LlamaFixtures.Expected("qwen2-tiny", "attention_mask");
        var options = new GenerationOptions(MaxNewTokens: 5);
        using var together = model.Generate(ids, mask, options);
        var real = new[] { 12, 9, 5 };
        for (var row = 0; row < 3; row++)
        {
            using var alone = model.Generate(ids[row..(row + 1), 0..real[row]], null, options);
            Assert.Equal(Row(alone, 0), Row(together, row, 12 - real[row]));
        }
    }

    [Fact]
    public void Stops_at_any_end_of_sequence_id_and_pads_finished_rows()
    {
        using var model = Model(Mistral);
        var ids = LlamaFixtures.Expected(Mistral, "greedy_input_ids");
        var mask = LlamaFixtures.Expected(Mistral, "greedy_attention_mask");
        var expected = LlamaFixtures.Expected(Mistral, "greedy_output");
        // Pretend row 0's third new token and row 1's sixth are end-of-sequence ids (a list of two).
        var end0 = expected[0, 7 + 2].ToInt64();
        var end1 = expected[1, 7 + 5].ToInt64();
        Assert.DoesNotContain(end1, Row(expected, 0, 7).Take(3));
        Assert.DoesNotContain(end0, Row(expected, 1, 7).Take(6));
        var withEnds = new WithEndOfSequence(model, [end0, end1], pad: 5);
        using var output = GenerationLoop.Generate(withEnds, ids, mask, new GenerationOptions(MaxNewTokens: 10));

        Assert.Equal(7 + 6, output.shape[1]);
        Assert.Equal([.. Row(expected, 0).Take(7 + 3), 5, 5, 5], Row(output, 0));
        Assert.Equal(Row(expected, 1).Take(7 + 6), Row(output, 1));
    }

    [Fact]
    public void Sampling_with_the_same_seed_repeats_and_another_seed_differs()
    {
        using var model = Model();
        var ids = LlamaFixtures.Expected(Llama3, "greedy_input_ids");
        var mask = LlamaFixtures.Expected(Llama3, "greedy_attention_mask");
        var options = new GenerationOptions(MaxNewTokens: 12, DoSample: true, TopK: 0, Temperature: 1.5, Seed: 42);
        using var a = model.Generate(ids, mask, options);
        using var b = model.Generate(ids, mask, options);
        using var c = model.Generate(ids, mask, options with { Seed = 43 });
        Assert.Equal(a.data<long>().ToArray(), b.data<long>().ToArray());
        Assert.NotEqual(a.data<long>().ToArray(), c.data<long>().ToArray());
    }

    [Fact]
    public void Top_k_one_and_a_very_low_temperature_are_greedy()
    {
        using var model = Model();
        var ids = LlamaFixtures.Expected(Llama3, "greedy_input_ids");
        var mask = LlamaFixtures.Expected(Llama3, "greedy_attention_mask");
        var greedy = LlamaFixtures.Expected(Llama3, "greedy_output").data<long>().ToArray();
        using var topK = model.Generate(ids, mask, new GenerationOptions(MaxNewTokens: 10, DoSample: true, TopK: 1, Seed: 1));
        using var cold = model.Generate(ids, mask, new GenerationOptions(MaxNewTokens: 10, DoSample: true, TopK: 0, Temperature: 1e-4, Seed: 2));
        Assert.Equal(greedy, topK.data<long>().ToArray());
        Assert.Equal(greedy, cold.data<long>().ToArray());
    }

    [Fact]
    public void A_row_sampled_alone_equals_the_same_row_sampled_in_a_batch_at_any_place()
    {
        // vllm#17524: a row's sampling is keyed by its own seed, never by where it sits in its job or batch.
        using var model = Model();
        var ids = LlamaFixtures.Expected(Llama3, "greedy_input_ids");
        var mask = LlamaFixtures.Expected(Llama3, "greedy_attention_mask");
        var options = new GenerationOptions(MaxNewTokens: 12, DoSample: true, TopK: 0, Temperature: 2.0, Seed: 9);
        using var batch = model.Generate(ids, mask, options);
        using var swapped = model.Generate(ids.flip(0), mask.flip(0), options);
        using var alone = model.Generate(ids[1..2, 3..], null, options);
        using var first = model.Generate(ids[0..1], null, options);
        Assert.Equal(Row(alone, 0), Row(batch, 1, 3));
        Assert.Equal(Row(alone, 0), Row(swapped, 0, 3));
        Assert.Equal(Row(first, 0), Row(batch, 0));
        Assert.Equal(Row(first, 0), Row(swapped, 1));
    }

    [Fact]
    public void A_rows_own_seed_decides_what_it_samples()
    {
        using var model = Model();
        var ids = LlamaFixtures.Expected(Llama3, "greedy_input_ids")[1..2, 3..];
        var options = new GenerationOptions(MaxNewTokens: 12, DoSample: true, TopK: 0, Temperature: 2.0, Seed: 9);
        using var twice = model.Generate(ids.expand(2, -1), null, options, rowSeeds: [5, 6]);
        using var five = model.Generate(ids, null, options, rowSeeds: [5]);
        using var six = model.Generate(ids, null, options with { Seed = 1 }, rowSeeds: [6]);
        Assert.Equal(Row(five, 0), Row(twice, 0));
        Assert.Equal(Row(six, 0), Row(twice, 1));
        Assert.NotEqual(Row(twice, 0), Row(twice, 1));

        // Without seeds of their own, copies of one prompt sample alike (as vLLM requests with one seed do).
        using var copies = model.Generate(ids.expand(2, -1), null, options);
        Assert.Equal(Row(copies, 0), Row(copies, 1));
    }

    [Fact]
    public void Top_p_never_draws_outside_the_nucleus_and_keeps_its_proportions()
    {
        // p = 0.8 over [0.5, 0.3, 0.1, 0.05, 0.05]: the nucleus is {0, 1} (0.5 + 0.3 reaches 0.8).
        const int rows = 4000;
        using var probabilities = tensor(new[] { 0.5f, 0.3f, 0.1f, 0.05f, 0.05f });
        using var logits = probabilities.log().unsqueeze(0).expand(rows, 5).contiguous();
        using var warped = LogitsWarpers.TopP(logits, 0.8);
        using var sampler = new RowSampler(Enumerable.Range(0, rows).Select(i => (long)Seeds.Mix(123, (ulong)i)).ToList());
        using var drawn = sampler.Sample(warped);
        var counts = new int[5];
        foreach (var token in drawn.data<long>())
        {
            counts[token]++;
        }

        Assert.Equal(0, counts[2] + counts[3] + counts[4]);
        // Expected 0.625 of the draws on token 0; 4000 draws put 5 standard deviations at +-0.038.
        Assert.InRange(counts[0] / (double)rows, 0.625 - 0.04, 0.625 + 0.04);
    }

    [Fact]
    public void Warpers_follow_transformers_semantics()
    {
        using var logits = tensor(new[] { 1f, 3f, 2f, 3f, 0f }, [1, 5]);
        using var topTwo = LogitsWarpers.TopK(logits, 2);
        Assert.Equal([false, true, false, true, false], topTwo.isfinite().data<bool>().ToArray());
        using var topP = LogitsWarpers.TopP(logits, 1e-6);
        Assert.Equal(1, topP.isfinite().sum().ToInt64());
        using var hot = LogitsWarpers.Apply(logits, new GenerationOptions(Temperature: 0.5, TopK: 0));
        Assert.Equal(new[] { 2f, 6f, 4f, 6f, 0f }, hot.data<float>().ToArray());
        Assert.Throws<InvalidInputException>(() => new GenerationOptions(TopP: 0).Validate());
    }

    private sealed class WithEndOfSequence(ICausalLanguageModel inner, long[] ends, long pad) : ICausalLanguageModel
    {
        public int VocabSize => inner.VocabSize;

        public IReadOnlyList<long> EndOfSequenceIds => ends;

        public long PadTokenId => pad;

        public long? DeclaredPadTokenId => inner.DeclaredPadTokenId;

        public ScalarType Dtype => inner.Dtype;

        public void CheckInput(Tensor inputIds, long extraPositions = 0) => inner.CheckInput(inputIds, extraPositions);

        public KeyValueCache CreateCache(long batch, long capacity, Device device) => inner.CreateCache(batch, capacity, device);

        public Tensor NextTokenLogits(Tensor inputIds, Tensor positionIds, Tensor? attentionMask, KeyValueCache cache) =>
            inner.NextTokenLogits(inputIds, positionIds, attentionMask, cache);
    }
}
