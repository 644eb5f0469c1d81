using System.Text.Json;
using DistributedInference.Models.Serving;

namespace DistributedInference.Host.Serving;

/// <summary>
/// The generation parameters a completion or chat request may carry, read with OpenAI's names and vLLM's extensions
/// (<c>top_k</c>, <c>repetition_penalty</c>, <c>stop_token_ids</c>, <c>ignore_eos</c>, <c>include_stop_str_in_output</c>,
/// <c>skip_special_tokens</c>, <c>return_token_ids</c>). OpenAI parameters this server does not implement are accepted
/// only at their neutral value and refused by name otherwise.
/// </summary>
public sealed record SamplingRequest(
    long? MaxTokens,
    double Temperature,
    double TopP,
    int TopK,
    double RepetitionPenalty,
    long? Seed,
    int N,
    IReadOnlyList<string> Stop,
    IReadOnlyList<long> StopTokenIds,
    bool IgnoreEos,
    bool IncludeStopString,
    bool SkipSpecialTokens,
    bool ReturnTokenIds,
    bool Stream,
    bool IncludeUsage)
{
    /// <param name="chat">Chat requests also take max_completion_tokens.</param>
    /// <exception cref="ApiException">A parameter of the wrong type or out of range (400 naming it).</exception>
    public static SamplingRequest Read(RequestFields fields, bool chat)
    {
        var maxTokens = fields.Integer("max_tokens", 1);
        if (chat && fields.Integer("max_completion_tokens", 1) is { } completion)
        {
            maxTokens = completion;
        }

        var stop = fields.Get("stop") switch
        {
            null => [],
            { ValueKind: JsonValueKind.String } s => [s.GetString()!],
            { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String) => a.EnumerateArray().Select(x => x.GetString()!).ToList(),
            _ => throw ApiException.BadRequest("'stop' must be a string or a list of strings.", "stop"),
        };
        if (stop.Any(s => s.Length == 0))
        {
            throw ApiException.BadRequest("'stop' strings must not be empty.", "stop");
        }

        var stopTokenIds = fields.Get("stop_token_ids") switch
        {
            null => [],
            { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out var id) && id >= 0) =>
                a.EnumerateArray().Select(x => x.GetInt64()).ToList(),
            _ => throw ApiException.BadRequest("'stop_token_ids' must be a list of non-negative integers.", "stop_token_ids"),
        };
        var stream = fields.Bool("stream") ?? false;
        var includeUsage = false;
        if (fields.Get("stream_options") is { } options)
        {
            if (!stream)
            {
                throw ApiException.BadRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options");
            }

            if (options.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.BadRequest("'stream_options' must be an object.", "stream_options");
            }

            foreach (var option in options.EnumerateObject())
            {
                if (option.Name == "include_usage" && option.Value.ValueKind is JsonValueKind.True or JsonValueKind.False)
                {
                    includeUsage = option.Value.GetBoolean();
                }
                else if (!(option.Name == "continuous_usage_stats" && option.Value.ValueKind == JsonValueKind.False))
                {
                    throw ApiException.Unsupported($"stream_options.{option.Name}");
                }
            }
        }

        var topK = fields.Integer("top_k", -1, int.MaxValue) ?? 0;
        var n = (int)(fields.Integer("n", 1, 16) ?? 1);
        fields.OnlyDefault("presence_penalty", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0);
        fields.OnlyDefault("frequency_penalty", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0);
        fields.OnlyDefault("min_p", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0);
        fields.OnlyDefault("min_tokens", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0);
        fields.OnlyDefault("logit_bias", v => v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any());
        fields.OnlyDefault("best_of", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == n);
        fields.OnlyDefault("echo", v => v.ValueKind == JsonValueKind.False);
        fields.OnlyDefault("store", v => v.ValueKind == JsonValueKind.False);
        fields.String("user");
        return new SamplingRequest(
            maxTokens,
            fields.Number("temperature", 0, 100) ?? 1.0,
            fields.Number("top_p", double.Epsilon, 1) ?? 1.0,
            topK < 0 ? 0 : (int)topK,
            fields.Number("repetition_penalty", double.Epsilon, 100) ?? 1.0,
            fields.Integer("seed"),
            n,
            stop,
            stopTokenIds,
            fields.Bool("ignore_eos") ?? false,
            fields.Bool("include_stop_str_in_output") ?? false,
            fields.Bool("skip_special_tokens") ?? true,
            fields.Bool("return_token_ids") ?? false,
            stream,
            includeUsage);
    }

    /// <summary>The engine's parameters for one sequence.</summary>
    public SamplingParameters Parameters(int maxTokens, long seed, int? logprobs) =>
        new SamplingParameters(maxTokens, Temperature, TopK, TopP, RepetitionPenalty, seed, logprobs).Validate();
}
