using DistributedInference.Models.Bert;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Bert;

/// <summary>Our BERT sentence embedder against the minilm-tiny reference (BertModel + sentence-transformers, fp32, CPU).</summary>
public sealed class BertFixtureTests
{
    private readonly ITestOutputHelper _output;

    public BertFixtureTests(ITestOutputHelper output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    private static SentenceEmbedder Embedder() => BertSource.Resolve(MiniLmFixture.Folder).CreateEmbedder(CPU, ScalarType.Float32);

    [Fact]
    public void Reads_the_sentence_transformers_folder()
    {
        var source = BertSource.Resolve(MiniLmFixture.Folder);
        Assert.Equal(64, source.Config.HiddenSize);
        Assert.Equal(2, source.Config.LayerCount);
        Assert.Equal(32, source.Sentence.MaxSeqLength);
        Assert.True(source.Sentence.DoLowerCase);
        Assert.True(source.Sentence.Normalize);
        Assert.Equal(SentencePooling.Mean, source.Sentence.Pooling);
    }

    [Fact]
    public void Tokenizes_every_sentence_as_sentence_transformers_does()
    {
        using var embedder = Embedder();
        using var batch = embedder.Tokenizer!.Tokenize(MiniLmFixture.Sentences());
        Assert.Equal(MiniLmFixture.Expected("input_ids").data<long>().ToArray(), batch.InputIds.data<long>().ToArray());
        Assert.Equal(MiniLmFixture.Expected("input_ids").shape, batch.InputIds.shape);
        Assert.Equal(MiniLmFixture.Expected("attention_mask").data<long>().ToArray(), batch.AttentionMask.data<long>().ToArray());
        Assert.Equal(MiniLmFixture.Expected("token_type_ids").data<long>().ToArray(), batch.TokenTypeIds.data<long>().ToArray());
    }

    [Fact]
    public void Unknown_words_accents_and_truncation_tokenize_as_expected()
    {
        using var embedder = Embedder();
        var tokenizer = embedder.Tokenizer!;
        var sentences = MiniLmFixture.Sentences();
        var jazz = tokenizer.Tokenizer.Tokens(tokenizer.Encode(sentences[3]));
        Assert.Contains("[UNK]", jazz);
        Assert.DoesNotContain(jazz, t => t.Contains('é'));
        var longest = tokenizer.Encode(sentences[4]);
        Assert.Equal(32, longest.Count);
        Assert.Equal(["[CLS]", "[SEP]"], tokenizer.Tokenizer.Tokens([longest[0], longest[^1]]));
    }

    [Fact]
    public void Hidden_states_and_pooler_output_match_bert_model()
    {
        using var model = BertSource.Resolve(MiniLmFixture.Folder).CreateModel(CPU, ScalarType.Float32);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var output = model.Forward(MiniLmFixture.Expected("input_ids"), MiniLmFixture.Expected("attention_mask"),
            MiniLmFixture.Expected("token_type_ids"), outputHiddenStates: true);
        Assert.Equal(3, output.HiddenStates!.Count);
        for (var k = 0; k < 3; k++)
        {
            // Padded positions too: they hold what BertModel computes there.
            _output.WriteLine($"hidden_{k} max |diff| = {Fixtures.AssertClose(MiniLmFixture.Expected($"hidden_{k}"), output.HiddenStates[k]):E2}");
        }

        _output.WriteLine($"last_hidden_state max |diff| = {Fixtures.AssertClose(MiniLmFixture.Expected("last_hidden_state"), output.LastHiddenState):E2}");
        _output.WriteLine($"pooler_output max |diff| = {Fixtures.AssertClose(MiniLmFixture.Expected("pooler_output"), output.PoolerOutput):E2}");
        var pooled = SentencePooling.Mean.Pool(output.LastHiddenState, MiniLmFixture.Expected("attention_mask"));
        _output.WriteLine($"mean_pooled max |diff| = {Fixtures.AssertClose(MiniLmFixture.Expected("mean_pooled"), pooled):E2}");
    }

    [Fact]
    public void Sentence_embeddings_match_sentence_transformers()
    {
        using var embedder = Embedder();
        using var embeddings = embedder.Embed(MiniLmFixture.Sentences());
        Assert.Equal(ScalarType.Float32, embeddings.dtype);
        Assert.Equal([6L, 64L], embeddings.shape);
        _output.WriteLine($"embeddings max |diff| = {Fixtures.AssertClose(MiniLmFixture.Expected("embeddings"), embeddings):E2}");
    }

    [Fact]
    public void A_tokenizer_json_with_all_minilm_padding_and_truncation_sections_embeds_as_sentence_transformers()
    {
        // spiceai#13415: all-MiniLM-L6-v2's tokenizer.json pads to 128 and truncates at 128; sentence-transformers'
        // fast tokenizer resets both per call, so pads are never pooled as tokens.
        using var copy = MiniLmFixture.Copy();
        var path = Path.Combine(copy.Path, "tokenizer.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["truncation"] = System.Text.Json.Nodes.JsonNode.Parse("""{"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0}""");
        json["padding"] = System.Text.Json.Nodes.JsonNode.Parse("""{"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}""");
        File.WriteAllText(path, json.ToJsonString());
        using var embedder = BertSource.Resolve(copy.Path).CreateEmbedder(CPU, ScalarType.Float32);
        using var embeddings = embedder.Embed(MiniLmFixture.Sentences());
        _output.WriteLine($"embeddings max |diff| = {Fixtures.AssertClose(MiniLmFixture.Expected("embeddings"), embeddings):E2}");
    }

    [Fact]
    public void A_row_embeds_the_same_alone_as_in_a_padded_batch()
    {
        using var embedder = Embedder();
        var sentences = MiniLmFixture.Sentences();
        using var together = embedder.Embed(sentences);
        for (var i = 0; i < sentences.Count; i++)
        {
            using var alone = embedder.Embed([sentences[i]]);
            using var row = together[i..(i + 1)];
            Fixtures.AssertClose(row, alone, 1e-5);
        }
    }

    [Fact]
    public void Weights_saved_with_the_bert_prefix_load_too()
    {
        using var folder = MiniLmFixture.Copy();
        var weights = Path.Combine(folder.Path, "model.safetensors");
        var stored = SafeTensorsFile.ReadAll(weights);
        SafeTensorsFile.Write(weights, stored.ToDictionary(p => "bert." + p.Key, p => p.Value), new Dictionary<string, string> { ["format"] = "pt" });
        using var embedder = BertSource.Resolve(folder.Path).CreateEmbedder(CPU, ScalarType.Float32);
        using var embeddings = embedder.Embed(MiniLmFixture.Expected("input_ids"), MiniLmFixture.Expected("attention_mask"));
        Fixtures.AssertClose(MiniLmFixture.Expected("embeddings"), embeddings);
    }

    [Fact]
    public void Half_precision_weights_are_converted_to_the_dtype_asked_for()
    {
        using var folder = MiniLmFixture.Copy();
        var weights = Path.Combine(folder.Path, "model.safetensors");
        var stored = SafeTensorsFile.ReadAll(weights);
        SafeTensorsFile.Write(weights, stored.ToDictionary(p => p.Key, p => p.Value.to(ScalarType.BFloat16)));
        using var model = BertSource.Resolve(folder.Path).CreateModel(CPU, ScalarType.Float32);
        var word = model.get_parameter("embeddings.word_embeddings.weight")!;
        Assert.Equal(ScalarType.Float32, word.dtype);
        using var expected = stored["embeddings.word_embeddings.weight"].to(ScalarType.BFloat16).to(ScalarType.Float32);
        Fixtures.AssertClose(expected, word, 0);
    }

    [Fact]
    public void Built_ins_have_random_weights_and_no_tokenizer()
    {
        var source = BertSource.Resolve("bert-tiny", seed: 3);
        Assert.False(source.HasTokenizer);
        using var embedder = source.CreateEmbedder(CPU, ScalarType.Float32);
        using var ids = tensor(new long[] { 101, 2023, 102, 0 }, [1, 4]);
        using var mask = tensor(new long[] { 1, 1, 1, 0 }, [1, 4]);
        using var embedding = embedder.Embed(ids, mask);
        Assert.Equal([1L, 128L], embedding.shape);
        using var norm = embedding.norm();
        Assert.Equal(1.0, norm.ToDouble(), 5);
        var error = Assert.Throws<InvalidInputException>(() => embedder.Embed(["a dog"]));
        Assert.DoesNotContain('\n', error.Message);

        var minilm = BertSource.Resolve("all-minilm-l6-v2");
        Assert.Equal((384, 6, 12, 1536, 30522, 512), (minilm.Config.HiddenSize, minilm.Config.LayerCount, minilm.Config.HeadCount,
            minilm.Config.IntermediateSize, minilm.Config.VocabSize, minilm.Config.MaxPositions));
        Assert.Equal(256, minilm.Sentence.MaxSeqLength);
        var bge = BertSource.Resolve("bge-small-en-v1.5");
        Assert.True(bge.Sentence.Pooling.ClsToken && bge.Sentence.Normalize);
        Assert.Equal(512, bge.Sentence.MaxSeqLength);
    }
}
