using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Serving;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Serving;

/// <summary>
/// The served-requests decoding loop against the one loop of <c>di infer</c> (<see cref="GenerationLoop"/>) on the
/// llama3-tiny fixture: greedy ids equal, alone and batched with other prompts; a seeded sampled row equals
/// <c>--do-sample</c>'s row of the same seed and index; stop ids, budgets and log-probabilities per row.
/// </summary>
public sealed class ServingDecoderTests
{
    private static readonly Lazy<LlamaForCausalLM> Model = new(() =>
    {
        DistributedInference.Models.Runtime.LibTorch.Initialize();
        return LlamaSource.Resolve(Path.Combine(Fixtures.Root, "llama3-tiny", "model")).CreateModel(CPU, ScalarType.Float32);
    });

    private static List<List<long>> Prompts()
    {
        var file = SafeTensorsFile.Open(Path.Combine(Fixtures.Root, "llama3-tiny", "expected.safetensors"));
        using var ids = file.Read("input_ids");
        using var mask = file.Read("attention_mask");
        return Enumerable.Range(0, (int)ids.shape[0]).Select(r =>
            Enumerable.Range(0, (int)ids.shape[1]).Where(t => mask[r, t].ToInt64() == 1).Select(t => ids[r, t].ToInt64()).ToList()).ToList();
    }

    private static List<long> Reference(IReadOnlyList<long> prompt, GenerationOptions options, long? rowSeed = null)
    {
        using var ids = tensor(prompt.ToArray()).unsqueeze(0);
        using var output = GenerationLoop.Generate(Model.Value, ids, null, options, rowSeed is { } seed ? [seed] : null);
        return Continuation.Of(output[0], prompt.Count, Model.Value.EndOfSequenceIds).ToList();
    }

    private static DecoderRow Row(IReadOnlyList<long> prompt, SamplingParameters sampling, long index = 0) =>
        new(prompt, sampling, Model.Value.EndOfSequenceIds, index);

    [Fact]
    public void Greedy_rows_get_the_ids_of_di_infer_alone_and_in_a_batch()
    {
        var prompts = Prompts();
        var expected = prompts.Select(p => Reference(p, new GenerationOptions(MaxNewTokens: 12))).ToList();
        var batch = ServingDecoder.Decode(Model.Value, prompts.Select(p => Row(p, new SamplingParameters(12, Temperature: 0))).ToList());
        for (var r = 0; r < prompts.Count; r++)
        {
            Assert.Equal(expected[r], batch[r].Tokens.Select(t => t.TokenId));
            var alone = ServingDecoder.Decode(Model.Value, [Row(prompts[r], new SamplingParameters(12, Temperature: 0))]);
            Assert.Equal(expected[r], alone[0].Tokens.Select(t => t.TokenId));
            Assert.Equal(expected[r].Count < 12 ? FinishReason.Stop : FinishReason.Length, alone[0].Finish);
        }
    }

    [Fact]
    public void A_seeded_sampled_row_draws_what_do_sample_draws_for_that_seed_and_prompt()
    {
        var prompt = Prompts()[1];
        var options = new GenerationOptions(MaxNewTokens: 10, DoSample: true, Temperature: 0.8, TopK: 20, TopP: 0.9, Seed: 7);
        var sampling = new SamplingParameters(10, Temperature: 0.8, TopK: 20, TopP: 0.9, Seed: 7);
        var mixed = ServingDecoder.Decode(Model.Value, [Row(Prompts()[0], new SamplingParameters(4, Temperature: 0)), Row(prompt, sampling), Row(prompt, sampling, index: 3)]);
        Assert.Equal(Reference(prompt, options), mixed[1].Tokens.Select(t => t.TokenId));

        // Choice 3 of the same request has a seed of its own: the same alone as batched.
        var third = ServingDecoder.SequenceSeed(Row(prompt, sampling, index: 3));
        Assert.Equal(Reference(prompt, options, third), mixed[2].Tokens.Select(t => t.TokenId));
        Assert.NotEqual(ServingDecoder.SequenceSeed(Row(prompt, sampling)), third);
    }

    [Fact]
    public void Rows_stop_at_their_own_stop_ids_and_budgets_and_report_logprobs()
    {
        var prompt = Prompts()[0];
        var free = ServingDecoder.Decode(Model.Value, [new DecoderRow(prompt, new SamplingParameters(8, Temperature: 0), [])])[0];
        Assert.Equal(8, free.Tokens.Count);
        var third = free.Tokens[2].TokenId;
        var cut = ServingDecoder.Decode(Model.Value, [
            new DecoderRow(prompt, new SamplingParameters(8, Temperature: 0, Logprobs: 3), [third]),
            new DecoderRow(prompt, new SamplingParameters(2, Temperature: 0), []),
        ]);
        Assert.Equal(free.Tokens.Take(free.Tokens.ToList().FindIndex(t => t.TokenId == third) + 1).Select(t => t.TokenId), cut[0].Tokens.Select(t => t.TokenId));
        Assert.Equal(FinishReason.Stop, cut[0].Finish);
        Assert.Equal(2, cut[1].Tokens.Count);
        Assert.Equal(FinishReason.Length, cut[1].Finish);
        foreach (var token in cut[0].Tokens)
        {
            // Greedy: the chosen token is the most likely one, so it heads the top log-probabilities.
            Assert.Equal(3, token.TopLogprobs!.Count);
            Assert.Equal(token.TokenId, token.TopLogprobs[0].TokenId);
            Assert.Equal(token.Logprob!.Value, token.TopLogprobs[0].Logprob, 5);
            Assert.True(token.Logprob <= 0);
        }
    }

    [Fact]
    public void Tokens_are_reported_as_chosen_and_a_cancelled_row_ends()
    {
        var prompt = Prompts()[2];
        var seen = new List<long>();
        var result = ServingDecoder.Decode(Model.Value, [new DecoderRow(prompt, new SamplingParameters(6, Temperature: 0), [])], (row, token) => seen.Add(token.TokenId));
        Assert.Equal(result[0].Tokens.Select(t => t.TokenId), seen);
        var stopped = ServingDecoder.Decode(Model.Value, [new DecoderRow(prompt, new SamplingParameters(6, Temperature: 0), [])], isCancelled: _ => seen.Count >= 0);
        Assert.Empty(stopped[0].Tokens);
    }
}
