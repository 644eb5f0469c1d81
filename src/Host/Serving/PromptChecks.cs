using DistributedInference.Models.Generation;
using DistributedInference.Models.Serving;

namespace DistributedInference.Host.Serving;

/// <summary>
/// The checks every prompt passes before any device work, and the engine requests made of it: ids inside the
/// vocabulary, a prompt shorter than the context (413 otherwise) with room for the tokens asked for (400 otherwise), and
/// the stop ids: the model's end-of-sequence ids (unless <c>ignore_eos</c>), the template's end-of-turn token for chats,
/// and the request's <c>stop_token_ids</c>.
/// </summary>
public static class PromptChecks
{
    /// <param name="defaultMaxTokens">The budget when the request gives none (null: the rest of the context).</param>
    /// <param name="defaultSeed">The sampling seed when the request gives none (null: a fresh random one).</param>
    /// <exception cref="ApiException">400 or 413 as above.</exception>
    public static IReadOnlyList<GenerationRequest> Requests(
        ServedModel model, IReadOnlyList<long> prompt, SamplingRequest sampling, int? defaultMaxTokens, bool chat, int? logprobs, string idPrefix, long? defaultSeed = null)
    {
        if (prompt.Count == 0)
        {
            throw ApiException.BadRequest("The prompt has no tokens.", "prompt");
        }

        var vocab = model.Source.VocabSize;
        if (prompt.Any(id => id < 0 || id >= vocab))
        {
            var bad = prompt.First(id => id < 0 || id >= vocab);
            throw ApiException.BadRequest($"Token id {bad} is outside the vocabulary of {vocab} tokens.", chat ? "messages" : "prompt");
        }

        if (prompt.Count >= model.ContextLength)
        {
            throw new ApiException(413, $"This model's maximum context length is {model.ContextLength} tokens. However, your prompt is {prompt.Count} tokens.", param: chat ? "messages" : "prompt", code: "context_length_exceeded");
        }

        var room = model.ContextLength - prompt.Count;
        var maxTokens = sampling.MaxTokens ?? Math.Min(defaultMaxTokens ?? room, room);
        if (prompt.Count + maxTokens > model.ContextLength)
        {
            throw ApiException.BadRequest(
                $"This model's maximum context length is {model.ContextLength} tokens. However, you requested {prompt.Count + maxTokens} tokens ({prompt.Count} in the prompt, {maxTokens} in the completion).",
                chat ? "max_completion_tokens" : "max_tokens",
                "context_length_exceeded");
        }

        var stops = new List<long>(sampling.StopTokenIds);
        if (!sampling.IgnoreEos)
        {
            stops.AddRange(model.EndOfSequenceIds);
            if (chat && model.EndOfTurnTokenId is { } endOfTurn)
            {
                stops.Add(endOfTurn);
            }
        }

        var seed = sampling.Seed ?? defaultSeed ?? Random.Shared.NextInt64();
        var requestId = $"{idPrefix}-{Guid.NewGuid():N}";
        return Enumerable.Range(0, sampling.N).Select(i => new GenerationRequest(
            $"{requestId}-{i}",
            prompt,
            sampling.Parameters((int)Math.Min(maxTokens, int.MaxValue), seed, logprobs),
            stops.Distinct().ToList())
        { SequenceIndex = i }).ToList();
    }

    /// <summary>A fresh seed per request when none is given (as vLLM samples without one).</summary>
    public static long RandomSeed() => (long)Seeds.Mix((ulong)Random.Shared.NextInt64(), (ulong)Environment.TickCount64);
}
