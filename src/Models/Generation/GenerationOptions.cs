namespace DistributedInference.Models.Generation;

/// <summary>
/// How <c>generate</c> picks tokens, with transformers' names and defaults (<c>GenerationConfig</c>): greedy unless
/// <see cref="DoSample"/>; sampling applies <see cref="Temperature"/>, then <see cref="TopK"/>, then
/// <see cref="TopP"/>, and draws from a generator per row seeded by the row's own seed, by default <see cref="Seed"/>
/// mixed with the row's token ids (<see cref="RowSeeds"/>), so a row samples the same tokens alone, in any batch, at any
/// place in its job, and on any device.
/// </summary>
/// <param name="MaxNewTokens">Tokens generated per row at most; decoding also stops at any end-of-sequence id.</param>
/// <param name="DoSample">Sample instead of taking the most likely token.</param>
/// <param name="Temperature">Divides the logits before sampling; must be &gt; 0.</param>
/// <param name="TopK">Keep the k most likely tokens (0 = all).</param>
/// <param name="TopP">Keep the smallest set of most likely tokens whose probability reaches p (1 = all); in (0, 1].</param>
/// <param name="Seed">The job's sampling seed: rows without a seed of their own are seeded by it and their tokens.</param>
public sealed record GenerationOptions(
    int MaxNewTokens = 20,
    bool DoSample = false,
    double Temperature = 1.0,
    int TopK = 50,
    double TopP = 1.0,
    long Seed = 0)
{
    public static readonly GenerationOptions Greedy = new();

    /// <summary>The options as a replica's description states them: <c>max_new_tokens 20, greedy</c> or <c>max_new_tokens 20, sample temperature 0.7 top_k 50 top_p 0.9 seed 3</c>.</summary>
    public string Describe() => string.Create(
        System.Globalization.CultureInfo.InvariantCulture,
        $"max_new_tokens {MaxNewTokens}, {(DoSample ? $"sample temperature {Temperature:R} top_k {TopK} top_p {TopP:R} seed {Seed}" : "greedy")}");

    /// <summary>
    /// The options as far as they change the tokens: greedy decoding ignores temperature, top-k, top-p and the seed, so two
    /// greedy options with the same <see cref="MaxNewTokens"/> are equal once decoded this way.
    /// </summary>
    public GenerationOptions Decoding() => DoSample ? this : new GenerationOptions(MaxNewTokens);

    /// <summary>Fails with a one-line <see cref="InvalidInputException"/> naming the first impossible value.</summary>
    public GenerationOptions Validate()
    {
        if (MaxNewTokens < 0)
        {
            throw new InvalidInputException($"max_new_tokens must be >= 0, got {MaxNewTokens}");
        }

        if (!(Temperature > 0) || double.IsInfinity(Temperature))
        {
            throw new InvalidInputException($"temperature must be a positive number, got {Temperature}");
        }

        if (TopK < 0)
        {
            throw new InvalidInputException($"top_k must be >= 0, got {TopK}");
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            throw new InvalidInputException($"top_p must be in (0, 1], got {TopP}");
        }

        return this;
    }
}
