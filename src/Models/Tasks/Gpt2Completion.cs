using DistributedInference.Models.Tokenization;

namespace DistributedInference.Models.Tasks;

/// <summary>What greedy generation made of one prompt: the new token ids and their text.</summary>
public sealed record Gpt2Completion(string Prompt, IReadOnlyList<long> OutputIds, string Text)
{
    public static Gpt2Completion From(string prompt, IReadOnlyList<long> outputIds) =>
        new(prompt, outputIds, Gpt2Tokenizer.Instance.Decode(outputIds));
}
