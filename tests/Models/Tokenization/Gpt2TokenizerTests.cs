using DistributedInference.Models.Tokenization;

namespace DistributedInference.Models.Tests.Tokenization;

public sealed class Gpt2TokenizerTests
{
    [Fact]
    public void Encodes_like_gpt2()
    {
        // "Hello world" is [15496, 995] in GPT-2's vocabulary.
        Assert.Equal([15496, 995], Gpt2Tokenizer.Instance.Encode("Hello world"));
    }

    [Fact]
    public void Decodes_what_it_encodes()
    {
        var text = "a dog, a cat and a chicken ü";
        var ids = Gpt2Tokenizer.Instance.Encode(text);
        Assert.Equal(text, Gpt2Tokenizer.Instance.Decode(ids.Select(i => (long)i)));
    }

    [Fact]
    public void Is_a_text_tokenizer_without_special_tokens_on_encode()
    {
        ITextTokenizer tokenizer = Gpt2Tokenizer.Instance;
        Assert.Equal(Gpt2Tokenizer.VocabularySize, tokenizer.VocabularySize);
        Assert.Equal([15496L, 995L], tokenizer.Encode("Hello world", addSpecialTokens: true));
        Assert.Equal(["Hello", "Ġworld", "<|endoftext|>"], tokenizer.Tokens([15496, 995, Gpt2Tokenizer.EndOfText]));
        Assert.Equal("Hello world", tokenizer.Decode([15496, 995, Gpt2Tokenizer.EndOfText]));
        Assert.Equal("Hello world<|endoftext|>", tokenizer.Decode([15496, 995, Gpt2Tokenizer.EndOfText], skipSpecialTokens: false));
    }
}
