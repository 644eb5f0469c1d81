using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tokenization;
using Microsoft.AspNetCore.Http;

namespace DistributedInference.Host.Serving;

/// <summary>The JSON shapes of OpenAI's responses this server writes (usage, log-probabilities, finish reasons), and how.</summary>
public static class OpenAIJson
{
    /// <summary>Text written as it is (no escaping of non-ASCII or HTML characters), as OpenAI's API writes it.</summary>
    public static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public static string? Finish(FinishReason? finish) => finish switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        _ => null,
    };

    public static JsonNode? StopReason(object? reason) => reason switch
    {
        string s => s,
        long id => id,
        _ => null,
    };

    public static JsonObject Usage(int prompt, int completion) => new()
    {
        ["prompt_tokens"] = prompt,
        ["completion_tokens"] = completion,
        ["total_tokens"] = prompt + completion,
    };

    public static JsonArray Ids(IEnumerable<long> ids) => new(ids.Select(id => (JsonNode?)id).ToArray());

    private static string TokenText(ITextTokenizer? tokenizer, long id) => tokenizer?.Decode([id], skipSpecialTokens: false) ?? $"token_id:{id}";

    /// <summary>Chat log-probabilities: <c>{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}</c>.</summary>
    public static JsonArray ChatLogprobs(IEnumerable<GeneratedToken> tokens, ITextTokenizer? tokenizer)
    {
        JsonObject Entry(long id, double logprob) => new()
        {
            ["token"] = TokenText(tokenizer, id),
            ["logprob"] = Math.Max(logprob, -9999.0),
            ["bytes"] = new JsonArray(Encoding.UTF8.GetBytes(TokenText(tokenizer, id)).Select(b => (JsonNode?)(int)b).ToArray()),
        };
        return new JsonArray(tokens.Select(t =>
        {
            var entry = Entry(t.TokenId, t.Logprob ?? double.NaN);
            entry["top_logprobs"] = new JsonArray((t.TopLogprobs ?? []).Select(a => (JsonNode?)Entry(a.TokenId, a.Logprob)).ToArray());
            return (JsonNode?)entry;
        }).ToArray());
    }

    /// <summary>Completion log-probabilities: <c>{"tokens", "token_logprobs", "top_logprobs", "text_offset"}</c>.</summary>
    public static JsonObject CompletionLogprobs(IReadOnlyList<GeneratedToken> tokens, ITextTokenizer? tokenizer, int textOffset)
    {
        var texts = tokens.Select(t => TokenText(tokenizer, t.TokenId)).ToList();
        var offsets = new JsonArray();
        var offset = textOffset;
        foreach (var text in texts)
        {
            offsets.Add(offset);
            offset += text.Length;
        }

        return new JsonObject
        {
            ["tokens"] = new JsonArray(texts.Select(t => (JsonNode?)t).ToArray()),
            ["token_logprobs"] = new JsonArray(tokens.Select(t => (JsonNode?)Math.Max(t.Logprob ?? double.NaN, -9999.0)).ToArray()),
            ["top_logprobs"] = new JsonArray(tokens.Select(t =>
            {
                var top = new JsonObject();
                foreach (var a in t.TopLogprobs ?? [])
                {
                    top[TokenText(tokenizer, a.TokenId)] = Math.Max(a.Logprob, -9999.0);
                }

                return (JsonNode?)top;
            }).ToArray()),
            ["text_offset"] = offsets,
        };
    }

    public static async Task WriteAsync(HttpContext context, JsonNode body)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(Options), context.RequestAborted);
    }
}
