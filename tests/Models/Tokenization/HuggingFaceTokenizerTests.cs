using System.Text.Json;
using DistributedInference.Models.Tokenization;

namespace DistributedInference.Models.Tests.Tokenization;

public sealed class HuggingFaceTokenizerTests
{
    public static TheoryData<string> Families => new() { "llama3-tiny", "qwen2-tiny", "qwen3-tiny" };

    [Theory]
    [MemberData(nameof(Families))]
    public void Every_prompt_case_matches_the_rust_tokenizers_library(string family)
    {
        using var tokenizer = HuggingFaceTokenizer.Load(Path.Combine(Fixtures.Root, family, "model"));
        using var prompts = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, family, "prompts.json")));
        var cases = prompts.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.NotEmpty(cases);
        foreach (var c in cases)
        {
            var text = c.GetProperty("text").GetString()!;
            var ids = Ids(c, "ids");
            Assert.Equal(ids, tokenizer.Encode(text, addSpecialTokens: true));
            Assert.Equal(Ids(c, "ids_no_special"), tokenizer.Encode(text, addSpecialTokens: false));
            Assert.Equal(c.GetProperty("decoded").GetString(), tokenizer.Decode(ids, skipSpecialTokens: false));
            Assert.Equal(c.GetProperty("decoded_skip_special").GetString(), tokenizer.Decode(ids, skipSpecialTokens: true));
        }
    }

    [Fact]
    public void Tokens_spell_ids_as_the_vocabulary_does()
    {
        using var tokenizer = HuggingFaceTokenizer.Load(Path.Combine(Fixtures.Root, "llama3-tiny", "model"));
        Assert.Equal(640, tokenizer.VocabularySize);
        Assert.Equal(["<|begin_of_text|>", "Ġzebra", "H"], tokenizer.Tokens([637, 634, 72]));
        Assert.Equal(637, tokenizer.TokenToId("<|begin_of_text|>"));
        var error = Assert.Throws<InvalidInputException>(() => tokenizer.Tokens([640]));
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_tokenizer_json_that_does_not_parse_is_one_line()
    {
        var folder = Directory.CreateTempSubdirectory("di-tokenizer-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), "{ \"model\": ");
            var error = Assert.Throws<InvalidInputException>(() => HuggingFaceTokenizer.Load(folder));
            Assert.Contains("tokenizer.json", error.Message);
            Assert.DoesNotContain('\n', error.Message);

            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), "{ \"model\": { \"type\": \"BPE\", \"vocab\": { \"a\": 0 } } }");
            error = Assert.Throws<InvalidInputException>(() => HuggingFaceTokenizer.Load(folder));
            Assert.Contains("tokenizer.json", error.Message);
            Assert.DoesNotContain('\n', error.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_folder_without_tokenizer_json_is_one_line()
    {
        var error = Assert.Throws<InvalidInputException>(() => HuggingFaceTokenizer.Load(Path.Combine(Fixtures.Root, "mistral-tiny", "model")));
        Assert.Contains("tokenizer.json", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Truncation_keeps_the_special_tokens_around_the_cut_text()
    {
        using var tokenizer = HuggingFaceTokenizer.Load(Path.Combine(Fixtures.Root, "llama3-tiny", "model"));
        var full = tokenizer.Encode("The quick brown fox jumps over the lazy dog.");
        var cut = tokenizer.Encode("The quick brown fox jumps over the lazy dog.", maxLength: 5);
        Assert.Equal(full.Take(5), cut);
    }

    [Fact]
    public void The_files_own_padding_and_truncation_sections_are_not_applied()
    {
        // spiceai#13415: transformers' fast tokenizer resets tokenizer.json's padding/truncation on every call.
        var folder = Directory.CreateTempSubdirectory("di-tokenizer-").FullName;
        try
        {
            var model = Path.Combine(Fixtures.Root, "llama3-tiny", "model");
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(model, "tokenizer.json")))!.AsObject();
            json["truncation"] = System.Text.Json.Nodes.JsonNode.Parse("""{"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0}""");
            json["padding"] = System.Text.Json.Nodes.JsonNode.Parse("""{"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 638, "pad_type_id": 0, "pad_token": "<|end_of_text|>"}""");
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
            using var plain = HuggingFaceTokenizer.Load(model);
            using var withSections = HuggingFaceTokenizer.Load(folder);
            const string text = "The quick brown fox jumps over the lazy dog.";
            Assert.Equal(plain.Encode(text), withSections.Encode(text));
            Assert.Equal(plain.Encode(text, addSpecialTokens: false), withSections.Encode(text, addSpecialTokens: false));
            Assert.Equal(plain.Encode(text, maxLength: 5), withSections.Encode(text, maxLength: 5));
            Assert.Equal(plain.Encode("hi"), withSections.Encode("hi"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Encodes_from_several_threads_at_once()
    {
        using var tokenizer = HuggingFaceTokenizer.Load(Path.Combine(Fixtures.Root, "qwen2-tiny", "model"));
        var expected = tokenizer.Encode("a dog, a cat and a chicken");
        Parallel.For(0, 64, _ => Assert.Equal(expected, tokenizer.Encode("a dog, a cat and a chicken")));
    }

    private static long[] Ids(JsonElement c, string name) =>
        c.GetProperty(name).EnumerateArray().Select(e => e.GetInt64()).ToArray();
}
