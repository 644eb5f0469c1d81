using System.Text.Json.Nodes;
using DistributedInference.Models.Bert;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Tests.Bert;

/// <summary>
/// Where sentences are cut when the folder gives no <c>max_seq_length</c>: min(max_position_embeddings, the tokenizer's
/// model_max_length), as sentence-transformers' Transformer module sets it (public case: sentence-transformers#3575).
/// </summary>
public sealed class MaxSeqLengthTests
{
    public MaxSeqLengthTests() => LibTorch.Initialize();

    private static void EditJson(string path, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    private static MiniLmFixture.TempFolder WithoutMaxSeqLength(JsonNode? modelMaxLength)
    {
        var folder = MiniLmFixture.Copy();
        EditJson(Path.Combine(folder.Path, "sentence_bert_config.json"), j => j.Remove("max_seq_length"));
        EditJson(Path.Combine(folder.Path, "tokenizer_config.json"), j =>
        {
            j.Remove("model_max_length");
            if (modelMaxLength is not null)
            {
                j["model_max_length"] = modelMaxLength;
            }
        });
        return folder;
    }

    [Fact]
    public void Without_max_seq_length_sentences_are_cut_at_the_tokenizers_model_max_length()
    {
        using var folder = WithoutMaxSeqLength(16);
        var source = BertSource.Resolve(folder.Path);
        Assert.Equal(16, source.Sentence.MaxSeqLength);
        var tokenizer = source.LoadTokenizer();
        using var _ = tokenizer.Tokenizer;
        var longest = tokenizer.Encode(MiniLmFixture.Sentences()[4]);
        var expected = MiniLmFixture.Expected("input_ids")[4].data<long>().Take(15).Append(3L);
        Assert.Equal(expected, longest);
    }

    [Fact]
    public void A_plain_bert_folder_is_cut_at_the_tokenizers_model_max_length_too()
    {
        using var folder = WithoutMaxSeqLength(16);
        File.Delete(Path.Combine(folder.Path, "modules.json"));
        Assert.Equal(16, BertSource.Resolve(folder.Path).Sentence.MaxSeqLength);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(1e30)]
    [InlineData(512.0)]
    public void Without_a_tokenizer_limit_below_it_sentences_are_cut_at_max_position_embeddings(double? modelMaxLength)
    {
        using var folder = WithoutMaxSeqLength(modelMaxLength is { } m ? JsonValue.Create(m) : null);
        Assert.Equal(64, BertSource.Resolve(folder.Path).Sentence.MaxSeqLength);
    }

    [Fact]
    public void An_explicit_max_seq_length_wins_over_model_max_length()
    {
        using var folder = MiniLmFixture.Copy();
        EditJson(Path.Combine(folder.Path, "tokenizer_config.json"), j => j["model_max_length"] = 16);
        Assert.Equal(32, BertSource.Resolve(folder.Path).Sentence.MaxSeqLength);
    }
}
