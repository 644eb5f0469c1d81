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
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        var fields = await serving.ReadBodyAsync(context);
        serving.CheckModel(fields);
        var engine = serving.Backend.Generation ?? throw NotSupported(serving.Model);
        var prepared = Prepare(fields, serving.Model);
        if (serving.Backend.Unavailable is { } reason)
        {
            throw ApiException.Unavailable($"No device serves the model `{serving.Model.Name}` now: {reason}");
        }

        var tokenizer = serving.Model.Tokenizer;
        var sampling = prepared.Sampling;
        var deltas = ServingMetrics.Measure(
            SequenceRunner.RunAllAsync(engine, prepared.Sequences, tokenizer, sampling, context.RequestAborted), ServingMetrics.TextCompletion, serving.Model.Name, prepared.PromptTokens, startedAt);
        if (!sampling.Stream)
        {
            await OpenAIJson.WriteAsync(context, prepared.Body(await Collect(deltas, prepared.Sequences.Count)));
            return;
        }

        var events = await ServerSentEvents.StartAsync(context);
        var completionTokens = 0;
        await foreach (var delta in deltas)
        {
            completionTokens += delta.Tokens.Count;
            var choice = new JsonObject
            {
                ["index"] = delta.Choice,
                ["text"] = delta.Text,
                ["logprobs"] = prepared.Logprobs is null ? null : OpenAIJson.CompletionLogprobs(delta.Tokens, tokenizer, 0),
                ["finish_reason"] = OpenAIJson.Finish(delta.Finish),
                ["stop_reason"] = OpenAIJson.StopReason(delta.StopReason),
            };
            if (sampling.ReturnTokenIds)
            {
                choice["token_ids"] = OpenAIJson.Ids(delta.Tokens.Select(t => t.TokenId));
            }

            await events.SendAsync(Chunk(prepared.Id, prepared.Created, serving.Model.Name, new JsonArray(choice)), context.RequestAborted);
        }

        if (sampling.IncludeUsage)
        {
            var chunk = Chunk(prepared.Id, prepared.Created, serving.Model.Name, []);
            chunk["usage"] = OpenAIJson.Usage(prepared.PromptTokens, completionTokens);
            await events.SendAsync(chunk, context.RequestAborted);
        }

        await events.DoneAsync(context.RequestAborted);
    }

    /// <summary>The 400 for a model that does not generate.</summary>
    public static ApiException NotSupported(ServedModel model) => ApiException.BadRequest($"The model `{model.Name}` does not support Completions API.", "model");

    /// <summary>Checks a completions body (every field read, the rest refused) and makes its sequences.</summary>
    /// <param name="defaultSeed">The sampling seed of a body without one (null: a fresh random one per request).</param>
    /// <exception cref="ApiException">400 or 413 naming the field.</exception>
    public static PreparedGeneration Prepare(RequestFields fields, ServedModel model, long? defaultSeed = null)
    {
        var prompts = ReadPrompts(fields, model);
        var sampling = SamplingRequest.Read(fields, chat: false);
        var logprobs = (int?)fields.Integer("logprobs", 0, 20);
        fields.OnlyDefault("suffix", v => v.ValueKind == JsonValueKind.String && v.GetString()!.Length == 0);
        fields.RefuseTheRest();
        var requests = prompts.SelectMany(p => PromptChecks.Requests(model, p, sampling, defaultMaxTokens: 16, chat: false, logprobs, "cmpl", defaultSeed)).ToList();
        var id = $"cmpl-{Guid.NewGuid():N}";
        var created = OpenAIJson.Now();
        var promptTokens = requests.Sum(r => r.PromptTokenIds.Count);
        JsonObject Body(IReadOnlyList<ChoiceResult> results)
        {
            var choices = new JsonArray();
            for (var i = 0; i < results.Count; i++)
            {
                var result = results[i];
                var choice = new JsonObject
                {
                    ["index"] = i,
                    ["text"] = result.Text,
                    ["logprobs"] = logprobs is null ? null : OpenAIJson.CompletionLogprobs(result.Tokens, model.Tokenizer, 0),
                    ["finish_reason"] = OpenAIJson.Finish(result.Finish),
                    ["stop_reason"] = OpenAIJson.StopReason(result.StopReason),
                };
                if (sampling.ReturnTokenIds)
                {
                    choice["token_ids"] = OpenAIJson.Ids(result.Tokens.Select(t => t.TokenId));
                    choice["prompt_token_ids"] = OpenAIJson.Ids(requests[i].PromptTokenIds);
                }

                choices.Add(choice);
            }

            return new JsonObject
            {
                ["id"] = id,
                ["object"] = "text_completion",
                ["created"] = created,
                ["model"] = model.Name,
                ["choices"] = choices,
                ["usage"] = OpenAIJson.Usage(promptTokens, results.Sum(r => r.Tokens.Count)),
            };
        }

        return new PreparedGeneration(requests, sampling, logprobs, id, created, promptTokens, Body);
    }

    private static JsonObject Chunk(string id, long created, string model, JsonArray choices) => new()
    {
        ["id"] = id,
        ["object"] = "text_completion",
        ["created"] = created,
        ["model"] = model,
        ["choices"] = choices,
    };

    /// <summary>The deltas of each choice put together, in choice order.</summary>
    public static async Task<IReadOnlyList<ChoiceResult>> Collect(IAsyncEnumerable<SequenceDelta> deltas, int count)
    {
        var texts = Enumerable.Range(0, count).Select(_ => new System.Text.StringBuilder()).ToArray();
        var tokens = Enumerable.Range(0, count).Select(_ => new List<GeneratedToken>()).ToArray();
        var finishes = new FinishReason?[count];
        var stopReasons = new object?[count];
        await foreach (var delta in deltas)
        {
            texts[delta.Choice].Append(delta.Text);
            tokens[delta.Choice].AddRange(delta.Tokens);
            finishes[delta.Choice] = delta.Finish ?? finishes[delta.Choice];
            stopReasons[delta.Choice] = delta.StopReason ?? stopReasons[delta.Choice];
        }

        return Enumerable.Range(0, count).Select(i => new ChoiceResult(texts[i].ToString(), tokens[i], finishes[i], stopReasons[i])).ToList();
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
