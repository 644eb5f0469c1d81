using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models.Serving;
using Microsoft.AspNetCore.Http;

namespace DistributedInference.Host.Serving;

/// <summary>
/// <c>POST /v1/completions</c>: OpenAI's legacy completions with vLLM's extensions. <c>prompt</c> is a string, a list of
/// strings, a list of token ids or a list of them; each prompt gets <c>n</c> choices (index prompt * n + i), with
/// <c>token_ids</c> and <c>prompt_token_ids</c> in each choice when <c>return_token_ids</c> is true.
/// </summary>
public static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext context, ServingContext serving)
    {
        var fields = await serving.ReadBodyAsync(context);
        serving.CheckModel(fields);
        var engine = serving.Backend.Generation ?? throw ApiException.BadRequest($"The model `{serving.Model.Name}` does not support Completions API.", "model");
        var prompts = ReadPrompts(fields, serving.Model);
        var sampling = SamplingRequest.Read(fields, chat: false);
        var logprobs = (int?)fields.Integer("logprobs", 0, 20);
        fields.OnlyDefault("suffix", v => v.ValueKind == JsonValueKind.String && v.GetString()!.Length == 0);
        fields.RefuseTheRest();
        if (serving.Backend.Unavailable is { } reason)
        {
            throw ApiException.Unavailable($"No device serves the model `{serving.Model.Name}` now: {reason}");
        }

        var requests = prompts.SelectMany(p => PromptChecks.Requests(serving.Model, p, sampling, defaultMaxTokens: 16, chat: false, logprobs, "cmpl")).ToList();
        var id = $"cmpl-{Guid.NewGuid():N}";
        var created = OpenAIJson.Now();
        var tokenizer = serving.Model.Tokenizer;
        if (sampling.Stream)
        {
            var events = await ServerSentEvents.StartAsync(context);
            var completionTokens = 0;
            await foreach (var delta in SequenceRunner.RunAllAsync(engine, requests, tokenizer, sampling, context.RequestAborted))
            {
                completionTokens += delta.Tokens.Count;
                var choice = new JsonObject
                {
                    ["index"] = delta.Choice,
                    ["text"] = delta.Text,
                    ["logprobs"] = logprobs is null ? null : OpenAIJson.CompletionLogprobs(delta.Tokens, tokenizer, 0),
                    ["finish_reason"] = OpenAIJson.Finish(delta.Finish),
                    ["stop_reason"] = OpenAIJson.StopReason(delta.StopReason),
                };
                if (sampling.ReturnTokenIds)
                {
                    choice["token_ids"] = OpenAIJson.Ids(delta.Tokens.Select(t => t.TokenId));
                }

                await events.SendAsync(Chunk(id, created, serving.Model.Name, new JsonArray(choice)), context.RequestAborted);
            }

            if (sampling.IncludeUsage)
            {
                var chunk = Chunk(id, created, serving.Model.Name, []);
                chunk["usage"] = OpenAIJson.Usage(requests.Sum(r => r.PromptTokenIds.Count), completionTokens);
                await events.SendAsync(chunk, context.RequestAborted);
            }

            await events.DoneAsync(context.RequestAborted);
            return;
        }

        var results = await Collect(SequenceRunner.RunAllAsync(engine, requests, tokenizer, sampling, context.RequestAborted), requests.Count);
        var choices = new JsonArray();
        for (var i = 0; i < results.Count; i++)
        {
            var (text, tokens, finish, stopReason) = results[i];
            var choice = new JsonObject
            {
                ["index"] = i,
                ["text"] = text,
                ["logprobs"] = logprobs is null ? null : OpenAIJson.CompletionLogprobs(tokens, tokenizer, 0),
                ["finish_reason"] = OpenAIJson.Finish(finish),
                ["stop_reason"] = OpenAIJson.StopReason(stopReason),
            };
            if (sampling.ReturnTokenIds)
            {
                choice["token_ids"] = OpenAIJson.Ids(tokens.Select(t => t.TokenId));
                choice["prompt_token_ids"] = OpenAIJson.Ids(requests[i].PromptTokenIds);
            }

            choices.Add(choice);
        }

        var body = new JsonObject
        {
            ["id"] = id,
            ["object"] = "text_completion",
            ["created"] = created,
            ["model"] = serving.Model.Name,
            ["choices"] = choices,
            ["usage"] = OpenAIJson.Usage(requests.Sum(r => r.PromptTokenIds.Count), results.Sum(r => r.Tokens.Count)),
        };
        await OpenAIJson.WriteAsync(context, body);
    }

    private static JsonObject Chunk(string id, long created, string model, JsonArray choices) => new()
    {
        ["id"] = id,
        ["object"] = "text_completion",
        ["created"] = created,
        ["model"] = model,
        ["choices"] = choices,
    };

    /// <summary>Every sequence of a request, each choice's deltas numbered by its place among all choices.</summary>

    /// <summary>The deltas of each choice put together.</summary>
    internal static async Task<List<(string Text, List<GeneratedToken> Tokens, FinishReason? Finish, object? StopReason)>> Collect(IAsyncEnumerable<SequenceDelta> deltas, int count)
    {
        var results = Enumerable.Range(0, count).Select(_ => (Text: new System.Text.StringBuilder(), Tokens: new List<GeneratedToken>(), Finish: (FinishReason?)null, StopReason: (object?)null)).ToArray();
        await foreach (var delta in deltas)
        {
            var r = results[delta.Choice];
            r.Text.Append(delta.Text);
            r.Tokens.AddRange(delta.Tokens);
            results[delta.Choice] = (r.Text, r.Tokens, delta.Finish ?? r.Finish, delta.StopReason ?? r.StopReason);
        }

        return results.Select(r => (r.Text.ToString(), r.Tokens, r.Finish, r.StopReason)).ToList();
    }

    private static List<IReadOnlyList<long>> ReadPrompts(RequestFields fields, ServedModel model)
    {
        var prompt = fields.Get("prompt") ?? throw ApiException.BadRequest("'prompt' is required.", "prompt");
        var addSpecial = fields.Bool("add_special_tokens") ?? true;
        IReadOnlyList<long> Tokenize(string text)
        {
            var tokenizer = model.Tokenizer ?? throw ApiException.BadRequest($"The model `{model.Name}` has no tokenizer: give the prompt as token ids.", "prompt");
            return tokenizer.Encode(text, addSpecial);
        }

        static bool IsIds(JsonElement e) => e.ValueKind == JsonValueKind.Array && e.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out _));
        List<IReadOnlyList<long>> prompts = prompt switch
        {
            { ValueKind: JsonValueKind.String } s => [Tokenize(s.GetString()!)],
            { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() > 0 && IsIds(a) => [a.EnumerateArray().Select(x => x.GetInt64()).ToList()],
            { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() > 0 && a.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String) =>
                a.EnumerateArray().Select(x => Tokenize(x.GetString()!)).ToList(),
            { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() > 0 && a.EnumerateArray().All(x => IsIds(x) && x.GetArrayLength() > 0) =>
                a.EnumerateArray().Select(x => (IReadOnlyList<long>)x.EnumerateArray().Select(y => y.GetInt64()).ToList()).ToList(),
            _ => throw ApiException.BadRequest("'prompt' must be a string, a list of strings, a list of token ids, or a list of lists of token ids.", "prompt"),
        };
        if (prompts.Count > 64)
        {
            throw ApiException.BadRequest("At most 64 prompts per request.", "prompt");
        }

        return prompts;
    }
}
