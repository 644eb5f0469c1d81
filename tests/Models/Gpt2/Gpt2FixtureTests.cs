using DistributedInference.Models.Generation;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Gpt2;

/// <summary>Our GPT-2 against Hugging Face transformers' own outputs on the gpt2-tiny fixture (fp32, CPU).</summary>
public sealed class Gpt2FixtureTests
{
    private readonly ITestOutputHelper _output;

    public Gpt2FixtureTests(ITestOutputHelper output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    private static Gpt2LMHeadModel LanguageModel() =>
        Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, ScalarType.Float32);

    [Fact]
    public void Language_model_logits_match_transformers()
    {
        using var model = LanguageModel();
        using var logits = model.Logits(Fixtures.Expected("input_ids"));
        _output.WriteLine($"lm_logits max |diff| = {Fixtures.AssertClose(Fixtures.Expected("lm_logits"), logits):E2}");
    }

    [Fact]
    public void Last_hidden_state_matches_transformers()
    {
        using var model = LanguageModel();
        using var noGrad = no_grad();
        using var hidden = model.Transformer.Forward(Fixtures.Expected("input_ids"));
        _output.WriteLine($"hidden_2 max |diff| = {Fixtures.AssertClose(Fixtures.Expected("hidden_2"), hidden):E2}");
    }

    [Fact]
    public void Classifier_logits_at_last_non_pad_token_match_transformers()
    {
        using var model = Gpt2Source.Resolve(Fixtures.TinyClassifier).CreateClassifier(CPU, ScalarType.Float32);
        using var logits = model.Classify(Fixtures.Expected("cls_input_ids"));
        _output.WriteLine($"cls_logits max |diff| = {Fixtures.AssertClose(Fixtures.Expected("cls_logits"), logits):E2}");
    }

    [Fact]
    public void Classifier_with_an_attention_mask_reads_the_same_tokens()
    {
        using var model = Gpt2Source.Resolve(Fixtures.TinyClassifier).CreateClassifier(CPU, ScalarType.Float32);
        var ids = Fixtures.Expected("cls_input_ids");
        using var mask = ids.ne(0).to(ScalarType.Int64);
        using var logits = model.Classify(ids, mask);
        Fixtures.AssertClose(Fixtures.Expected("cls_logits"), logits);
    }

    [Fact]
    public void Greedy_generation_matches_transformers_exactly()
    {
        using var model = LanguageModel();
        using var output = GreedySearch.Generate(model, Fixtures.Expected("greedy_prompt"), null, maxNewTokens: 12);
        Assert.Equal(Fixtures.Expected("greedy_output").data<long>().ToArray(), output.data<long>().ToArray());
    }

    [Fact]
    public void Left_padded_generation_equals_each_prompt_alone()
    {
        using var model = LanguageModel();
        var ids = Fixtures.Expected("input_ids");
        using var shortPrompt = ids[0..1, 0..5];
        using var longPrompt = ids[1..2, 0..9];
        using var aloneShort = GreedySearch.Generate(model, shortPrompt, null, 6);
        using var aloneLong = GreedySearch.Generate(model, longPrompt, null, 6);

        var batch = Models.Tokenization.TokenBatch.Pad(
            [shortPrompt.data<long>().Select(x => (int)x).ToList(), longPrompt.data<long>().Select(x => (int)x).ToList()],
            padId: 0, padLeft: true);
        using var together = GreedySearch.Generate(model, batch.InputIds, batch.AttentionMask, 6);

        Assert.Equal(aloneShort.data<long>().ToArray(), together[0, 4..].data<long>().ToArray());
        Assert.Equal(aloneLong.data<long>().ToArray(), together[1].data<long>().ToArray());
    }

    [Fact]
    public void Cached_decoding_gives_the_logits_of_a_full_forward()
    {
        using var model = LanguageModel();
        var ids = Fixtures.Expected("input_ids");
        using var noGrad = no_grad();
        using var cache = new KeyValueCache(2, 4, 4, 16, 16, CPU, ScalarType.Float32);
        using var first = model.Transformer.Forward(ids[.., 0..10], cache: cache);
        using var rest = model.Transformer.Forward(ids[.., 10..16], cache: cache);
        using var full = model.Transformer.Forward(ids);
        Fixtures.AssertClose(full[.., 10..16], rest, 1e-5);
    }

    [Fact]
    public void Reduced_precision_runs_close_to_fp32()
    {
        using var model = Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, ScalarType.BFloat16);
        using var logits = model.Logits(Fixtures.Expected("input_ids"));
        Assert.Equal(ScalarType.BFloat16, logits.dtype);
        Fixtures.AssertClose(Fixtures.Expected("lm_logits"), logits, 0.05);
    }

    [Theory]
    [InlineData(1000L, "outside the model's vocabulary")]
    [InlineData(-1L, "outside the model's vocabulary")]
    public void Token_ids_outside_the_vocabulary_are_rejected(long id, string message)
    {
        using var model = LanguageModel();
        using var ids = tensor(new[] { 1L, 2L, id }, [1, 3]);
        var error = Assert.Throws<InvalidInputException>(() => model.Logits(ids));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sequences_longer_than_n_positions_are_rejected()
    {
        using var model = LanguageModel();
        using var ids = ones(1, 129, ScalarType.Int64);
        var error = Assert.Throws<InvalidInputException>(() => model.Logits(ids));
        Assert.Contains("n_positions 128", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Built_in_configs_initialise_reproducibly_from_a_seed()
    {
        using var a = Gpt2Source.Resolve("gpt2-tiny", seed: 7).CreateLanguageModel(CPU, ScalarType.Float32);
        using var b = Gpt2Source.Resolve("gpt2-tiny", seed: 7).CreateLanguageModel(CPU, ScalarType.Float32);
        using var c = Gpt2Source.Resolve("gpt2-tiny", seed: 8).CreateLanguageModel(CPU, ScalarType.Float32);
        using var ids = tensor(new[] { 464L, 3290L, 318L }, [1, 3]);
        using var la = a.Logits(ids);
        using var lb = b.Logits(ids);
        using var lc = c.Logits(ids);
        Assert.Equal(0.0, Fixtures.MaxAbsDiff(la, lb));
        Assert.True(Fixtures.MaxAbsDiff(la, lc) > 1e-3);
    }

    [Fact]
    public void Unknown_model_names_are_a_clear_error()
    {
        var error = Assert.Throws<InvalidInputException>(() => Gpt2Source.Resolve("gpt3"));
        Assert.Contains("unknown model 'gpt3'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_language_model_folder_has_no_classifier_head()
    {
        var error = Assert.Throws<InvalidInputException>(() => Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateClassifier(CPU, ScalarType.Float32));
        Assert.Contains("score.weight", error.Message, StringComparison.Ordinal);
    }
}
