using System.Text.Json.Nodes;
using DistributedInference.Models.Tokenization;

namespace DistributedInference.Models.Tests.Tokenization;

/// <summary>
/// A tokenizer whose Split regex backtracks exponentially is refused in one line before the Rust library runs it: on
/// such a regex Oniguruma gives up, the tokenizers library panics, and Tokenizers.DotNet (panic = "abort") aborts the
/// whole process (exit 134 on a 41-character prompt for <c>(a+)+$</c>).
/// </summary>
public sealed class BacktrackingPatternTests
{
    [Theory]
    [InlineData("(a+)+$", "(a+)+")]
    [InlineData("x(?:a|aa)*y", "(?:a|aa)*")]
    [InlineData("(\\s?\\w)+!", "(\\s?\\w)+")]
    [InlineData("((ab)*c)+", "((ab)*c)+")]
    [InlineData("(?=(a+){2,})b", "(a+){2,}")]
    [InlineData("(?<word>[a-z]+\\s*){3}", "(?<word>[a-z]+\\s*){3}")]
    public void Nested_repetition_is_found(string pattern, string part) =>
        Assert.Equal(part, BacktrackingPatterns.FindNestedRepetition(pattern));

    [Theory]
    // Llama 3 and Qwen2 (the fixtures' own), GPT-4o's o200k, DeepSeek-V3's pre-tokenizer regexes.
    [InlineData("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")]
    [InlineData("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")]
    [InlineData("[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")]
    [InlineData("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")]
    [InlineData("(?>a+)+b")]
    [InlineData("(a+)++b")]
    [InlineData("(ab)+c")]
    [InlineData("(?i)\\s{2,}")]
    public void Tokenizer_regexes_without_nested_repetition_pass(string pattern) =>
        Assert.Null(BacktrackingPatterns.FindNestedRepetition(pattern));

    [Fact]
    public void A_tokenizer_with_a_backtracking_split_is_refused_in_one_line()
    {
        var folder = Directory.CreateTempSubdirectory("di-backtrack-").FullName;
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, "llama3-tiny", "model", "tokenizer.json")))!.AsObject();
            json["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"] = new JsonObject { ["Regex"] = "(a+)+$" };
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
            var error = Assert.Throws<InvalidInputException>(() => HuggingFaceTokenizer.Load(folder));
            Assert.Contains("pre_tokenizer regex \"(a+)+$\" repeats \"(a+)+\"", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', error.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
