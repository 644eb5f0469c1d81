namespace DistributedInference.Models.Tasks;

/// <summary>What generation made of one prompt: the new token ids (up to and including an end-of-sequence id) and their text.</summary>
/// <param name="Prompt">The prompt as given.</param>
/// <param name="OutputIds">The generated ids, the prompt's own left out.</param>
/// <param name="Text">The generated ids decoded by the model's tokenizer, special tokens left out.</param>
public sealed record Completion(string Prompt, IReadOnlyList<long> OutputIds, string Text);
