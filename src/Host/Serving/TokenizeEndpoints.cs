using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace DistributedInference.Host.Serving;

/// <summary>
/// vLLM's <c>POST /tokenize</c> (a <c>prompt</c>, or <c>messages</c> with <c>add_generation_prompt</c>, <c>tools</c> and
/// <c>chat_template_kwargs</c> rendered by the chat template exactly as a chat request renders them) and
/// <c>POST /detokenize</c> (<c>tokens</c> to <c>prompt</c>).
/// </summary>
public static class TokenizeEndpoints
{
    public static async Task TokenizeAsync(HttpContext context, ServingContext serving)
    {
        var fields = await serving.ReadBodyAsync(context);
        serving.CheckModel(fields);
        IReadOnlyList<long> ids;
        if (fields.Get("messages") is not null)
        {
            ids = ChatCompletionsEndpoint.Prompt(fields, serving.Model);
        }
        else
        {
            var prompt = fields.String("prompt") ?? throw ApiException.BadRequest("Give 'prompt' or 'messages'.", "prompt");
            var tokenizer = serving.Model.Tokenizer ?? throw ApiException.BadRequest($"The model `{serving.Model.Name}` has no tokenizer.", "prompt");
            ids = tokenizer.Encode(prompt, fields.Bool("add_special_tokens") ?? true);
        }

        var strings = fields.Bool("return_token_strs") ?? false;
        fields.RefuseTheRest();
        var body = new JsonObject
        {
            ["count"] = ids.Count,
            ["max_model_len"] = serving.Model.ContextLength,
            ["tokens"] = OpenAIJson.Ids(ids),
        };
        if (strings && serving.Model.Tokenizer is { } t)
        {
            body["token_strs"] = new JsonArray(t.Tokens(ids).Select(s => (JsonNode?)s).ToArray());
        }

        await OpenAIJson.WriteAsync(context, body);
    }

    public static async Task DetokenizeAsync(HttpContext context, ServingContext serving)
    {
        var fields = await serving.ReadBodyAsync(context);
        serving.CheckModel(fields);
        var tokens = fields.Get("tokens") switch
        {
            { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out _)) => a.EnumerateArray().Select(x => x.GetInt64()).ToList(),
            _ => throw ApiException.BadRequest("'tokens' must be a list of token ids.", "tokens"),
        };
        fields.RefuseTheRest();
        var tokenizer = serving.Model.Tokenizer ?? throw ApiException.BadRequest($"The model `{serving.Model.Name}` has no tokenizer.", "tokens");
        if (tokens.Any(id => id < 0 || id >= serving.Model.Source.VocabSize))
        {
            var bad = tokens.First(id => id < 0 || id >= serving.Model.Source.VocabSize);
            throw ApiException.BadRequest($"Token id {bad} is outside the vocabulary of {serving.Model.Source.VocabSize} tokens.", "tokens");
        }

        await OpenAIJson.WriteAsync(context, new JsonObject { ["prompt"] = tokenizer.Decode(tokens, skipSpecialTokens: false) });
    }
}
