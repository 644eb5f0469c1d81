using System.Text.Json.Nodes;
using DistributedInference.Models.Diffusion;

namespace DistributedInference.Models.Tests.Diffusion;

/// <summary>The CLIP tokenizer against the fixture's 18 cases (ids from Hugging Face's Rust tokenizers), both ways.</summary>
public sealed class ClipTokenizerTests
{
    public static TheoryData<bool> Sources => new() { false, true };

    private static IEnumerable<JsonObject> Cases(string key) => ((JsonArray)SdTinyFixture.Prompts[key]!).Cast<JsonObject>();

    private static long[] Ids(JsonNode? node) => ((JsonArray)node!).Select(n => n!.GetValue<long>()).ToArray();

    [Theory]
    [MemberData(nameof(Sources))]
    public void Every_case_equals_the_fixture_ids_padded_and_unpadded(bool fromVocabularyFiles)
    {
        using var tokenizer = ClipTokenizer.Load(Path.Combine(SdTinyFixture.Model, "tokenizer"), fromVocabularyFiles);
        Assert.Equal(fromVocabularyFiles ? "vocab.json + merges.txt" : "tokenizer.json", Path.GetFileName(tokenizer.Source));
        var cases = Cases("tokenizer_cases").ToList();
        Assert.Equal(18, cases.Count);
        foreach (var c in cases)
        {
            var text = c["text"]!.GetValue<string>();
            Assert.Equal(Ids(c["ids_unpadded"]), tokenizer.Encode(text));
            Assert.Equal(Ids(c["ids"]), tokenizer.EncodePadded(text));
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Divergent_cases_follow_the_rust_pipeline(bool fromVocabularyFiles)
    {
        using var tokenizer = ClipTokenizer.Load(Path.Combine(SdTinyFixture.Model, "tokenizer"), fromVocabularyFiles);
        foreach (var c in Cases("tokenizer_divergent_cases"))
        {
            var text = c["text"]!.GetValue<string>();
            Assert.Equal(Ids(c["ids_fast_unpadded"]), tokenizer.Encode(text));
            Assert.Equal(Ids(c["ids_fast"]), tokenizer.EncodePadded(text));
        }
    }

    [Fact]
    public void Special_tokens_and_length_come_from_tokenizer_config()
    {
        using var tokenizer = ClipTokenizer.Load(Path.Combine(SdTinyFixture.Model, "tokenizer"));
        Assert.Equal((998L, 999L, 999L, 77), (tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.PadTokenId, tokenizer.ModelMaxLength));
        Assert.Equal([998L, .. Enumerable.Repeat(999L, 76)], tokenizer.EncodePadded(string.Empty));
    }

    [Fact]
    public void Built_in_tokenizer_spells_words_byte_by_byte_with_clip_ids()
    {
        using var tokenizer = ClipTokenizer.BytesOnly(49408, padWithExclamation: false);
        // "a" is byte 97: CLIP id 97 - 33 = 64 ("!" is id 0); as a word's last symbol it carries </w>: + 256.
        Assert.Equal([49406L, 320L, 49407L], tokenizer.Encode("A"));
        Assert.Equal([49406L, 67L, 78L, 326L, 49407L], tokenizer.Encode("dog"));
        Assert.Equal("a dog", tokenizer.Decode(tokenizer.Encode("A  dog")));
        using var sd2 = ClipTokenizer.BytesOnly(49408, padWithExclamation: true);
        Assert.Equal(0L, sd2.EncodePadded("x")[^1]);
    }
}
