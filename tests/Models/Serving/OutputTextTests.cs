using DistributedInference.Models.Serving;
using DistributedInference.Models.Tokenization;

namespace DistributedInference.Models.Tests.Serving;

/// <summary>Text from tokens as they arrive: no half characters, stop strings across tokens, deltas that add up.</summary>
public sealed class OutputTextTests
{
    private static HuggingFaceTokenizer Tokenizer() => HuggingFaceTokenizer.Load(Path.Combine(Fixtures.Root, "qwen2-tiny", "model"));

    private static (List<string> Deltas, OutputText Text) Feed(ITextTokenizer tokenizer, IEnumerable<long> ids, params string[] stops)
    {
        var text = new OutputText(tokenizer, stops);
        var deltas = new List<string>();
        foreach (var id in ids)
        {
            deltas.Add(text.Append(id));
            if (text.MatchedStop is not null)
            {
                break;
            }
        }

        deltas.Add(text.Flush());
        return (deltas, text);
    }

    [Fact]
    public void A_character_split_over_tokens_is_never_sent_half_made()
    {
        using var tokenizer = Tokenizer();
        const string sentence = "naïve café 漢字 and 🎉 done";
        var ids = tokenizer.Encode(sentence, addSpecialTokens: false);
        var (deltas, text) = Feed(tokenizer, ids);
        Assert.Equal(sentence, text.Text);
        Assert.Equal(sentence, string.Concat(deltas));
        Assert.All(deltas, d => Assert.DoesNotContain('\uFFFD', d));
        // Byte-level BPE cuts the emoji and the ideographs into byte tokens: some tokens add no text.
        Assert.Contains(deltas.Take(ids.Count), d => d.Length == 0);
    }

    [Fact]
    public void A_stop_string_across_tokens_ends_the_text_before_it_and_nothing_of_it_is_sent()
    {
        using var tokenizer = Tokenizer();
        var ids = tokenizer.Encode("alpha beta STOP gamma", addSpecialTokens: false);
        var (deltas, text) = Feed(tokenizer, ids, "STOP", "never");
        Assert.Equal("alpha beta ", text.Text);
        Assert.Equal("STOP", text.MatchedStop);
        Assert.Equal(text.Text, string.Concat(deltas));

        var kept = new OutputText(tokenizer, ["STOP"], includeStopString: true);
        var sent = string.Concat(ids.Select(kept.Append)) + kept.Flush();
        Assert.Equal("alpha beta STOP", sent);
    }
}
