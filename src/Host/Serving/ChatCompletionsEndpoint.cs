using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Templates;
using Microsoft.AspNetCore.Http;

namespace DistributedInference.Host.Serving;

/// <summary>
/// <c>POST /v1/chat/completions</c>: the messages (and <c>tools</c>, and vLLM's <c>chat_template_kwargs</c>) go through the
/// model's chat template as transformers' <c>apply_chat_template</c> renders it, the text is tokenized without adding
/// special tokens (the template has them), and the answer is generated until an end-of-sequence id, the template's
/// end-of-turn token, a stop string or the budget. Content given as parts joins their texts with newlines, as vLLM
/// does; tool call arguments given as JSON text reach the template as objects. Tool calls are not parsed out of the
/// answer: it is returned as text.
/// </summary>
public static class ChatCompletionsEndpoint
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
            SequenceRunner.RunAllAsync(engine, prepared.Sequences, tokenizer, sampling, context.RequestAborted), ServingMetrics.Chat, serving.Model.Name, prepared.PromptTokens, startedAt);
        if (!sampling.Stream)
        {
            await OpenAIJson.WriteAsync(context, prepared.Body(await CompletionsEndpoint.Collect(deltas, prepared.Sequences.Count)));
            return;
        }

        var events = await ServerSentEvents.StartAsync(context);
        var started = new HashSet<int>();
        var completionTokens = 0;
        await foreach (var delta in deltas)
        {
            completionTokens += delta.Tokens.Count;
            var message = new JsonObject();
            if (started.Add(delta.Choice))
            {
                message["role"] = "assistant";
            }

            if (delta.Text.Length > 0 || message.Count > 0)
            {
                message["content"] = delta.Text;
            }

            var choice = new JsonObject
            {
                ["index"] = delta.Choice,
                ["delta"] = message,
                ["logprobs"] = prepared.Logprobs is not null && delta.Tokens.Count > 0 ? new JsonObject { ["content"] = OpenAIJson.ChatLogprobs(delta.Tokens, tokenizer) } : null,
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
    public static ApiException NotSupported(ServedModel model) => ApiException.BadRequest($"The model `{model.Name}` does not support Chat Completions API.", "model");

    /// <summary>Checks a chat body (every field read, the rest refused), renders its template and makes its sequences.</summary>
    /// <param name="defaultSeed">The sampling seed of a body without one (null: a fresh random one per request).</param>
    /// <exception cref="ApiException">400 or 413 naming the field.</exception>
    public static PreparedGeneration Prepare(RequestFields fields, ServedModel model, long? defaultSeed = null)
    {
        var prompt = Prompt(fields, model);
        var sampling = SamplingRequest.Read(fields, chat: true);
        var logprobs = fields.Bool("logprobs") ?? false;
        var top = fields.Integer("top_logprobs", 0, 20);
        if (top is not null && !logprobs)
        {
            throw ApiException.BadRequest("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs");
        }

        fields.OnlyDefault("response_format", v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty("type", out var t) && t.GetString() == "text");
        fields.OnlyDefault("continue_final_message", v => v.ValueKind == JsonValueKind.False);
        fields.OnlyDefault("tool_choice", v => v.ValueKind == JsonValueKind.String && v.GetString() is "none" or "auto");
        fields.Bool("parallel_tool_calls");
        fields.RefuseTheRest();
        var requests = PromptChecks.Requests(model, prompt, sampling, defaultMaxTokens: null, chat: true, logprobs ? (int)(top ?? 0) : null, "chatcmpl", defaultSeed);
        var id = $"chatcmpl-{Guid.NewGuid():N}";
        var created = OpenAIJson.Now();
        JsonObject Body(IReadOnlyList<ChoiceResult> results)
        {
            var choices = new JsonArray();
            for (var i = 0; i < results.Count; i++)
            {
                var result = results[i];
                var choice = new JsonObject
                {
                    ["index"] = i,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = result.Text, ["tool_calls"] = new JsonArray() },
                    ["logprobs"] = logprobs ? new JsonObject { ["content"] = OpenAIJson.ChatLogprobs(result.Tokens, model.Tokenizer) } : null,
                    ["finish_reason"] = OpenAIJson.Finish(result.Finish),
                    ["stop_reason"] = OpenAIJson.StopReason(result.StopReason),
                };
                if (sampling.ReturnTokenIds)
                {
                    choice["token_ids"] = OpenAIJson.Ids(result.Tokens.Select(t => t.TokenId));
                }

                choices.Add(choice);
            }

            var body = new JsonObject
            {
                ["id"] = id,
                ["object"] = "chat.completion",
                ["created"] = created,
                ["model"] = model.Name,
                ["choices"] = choices,
                ["usage"] = OpenAIJson.Usage(prompt.Count, results.Sum(r => r.Tokens.Count)),
            };
            if (sampling.ReturnTokenIds)
            {
                body["prompt_token_ids"] = OpenAIJson.Ids(prompt);
            }

            return body;
        }

        return new PreparedGeneration(requests, sampling, logprobs ? (int)(top ?? 0) : null, id, created, prompt.Count, Body);
    }

    private static JsonObject Chunk(string id, long created, string model, JsonArray choices) => new()
    {
        ["id"] = id,
        ["object"] = "chat.completion.chunk",
        ["created"] = created,
        ["model"] = model,
        ["choices"] = choices,
    };

    /// <summary>The token ids of the chat's rendered template (also what <c>/tokenize</c> gives for messages).</summary>
    /// <exception cref="ApiException">400: no template, bad messages, or the template refused them (its own message).</exception>
    public static IReadOnlyList<long> Prompt(RequestFields fields, ServedModel model)
    {
        var messages = Messages(fields.Get("messages") ?? throw ApiException.BadRequest("'messages' is required.", "messages"));
        var tools = fields.Get("tools") switch
        {
            null => null,
            { ValueKind: JsonValueKind.Array } t when t.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Object) => JsonNode.Parse(t.GetRawText())!.AsArray(),
            _ => throw ApiException.BadRequest("'tools' must be a list of objects.", "tools"),
        };
        var variables = fields.Get("chat_template_kwargs") switch
        {
            null => new JsonObject(),
            { ValueKind: JsonValueKind.Object } k => JsonNode.Parse(k.GetRawText())!.AsObject(),
            _ => throw ApiException.BadRequest("'chat_template_kwargs' must be an object.", "chat_template_kwargs"),
        };
        var input = new ChatTemplateInput(messages)
        {
            Tools = tools,
            AddGenerationPrompt = fields.Bool("add_generation_prompt") ?? true,
            Variables = variables,
        };
        try
        {
            return ChatPrompt.TokenIds(model, input, fields.Bool("add_special_tokens") ?? false);
        }
        catch (InvalidInputException e)
        {
            throw ApiException.BadRequest(e.Message, "messages");
        }
    }

    private static JsonArray Messages(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Array || element.GetArrayLength() == 0)
        {
            throw ApiException.BadRequest("'messages' must be a non-empty list of messages.", "messages");
        }

        var messages = new JsonArray();
        var index = 0;
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
            {
                throw ApiException.BadRequest($"messages[{index}] must be an object with a string 'role'.", "messages");
            }

            var message = JsonNode.Parse(item.GetRawText())!.AsObject();
            if (item.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Array)
            {
                var texts = new List<string>();
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.GetString() == "text"
                        && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                    {
                        texts.Add(text.GetString()!);
                    }
                    else
                    {
                        throw ApiException.BadRequest($"messages[{index}].content: only text parts are supported by this model.", "messages");
                    }
                }

                message["content"] = string.Join('\n', texts);
            }
            else if (item.TryGetProperty("content", out content) && content.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                throw ApiException.BadRequest($"messages[{index}].content must be a string, a list of text parts, or null.", "messages");
            }

            if (message["tool_calls"] is JsonArray calls)
            {
                foreach (var call in calls)
                {
                    if (call?["function"] is JsonObject function && function["arguments"] is JsonValue arguments && arguments.GetValueKind() == JsonValueKind.String)
                    {
                        try
                        {
                            if (JsonNode.Parse(arguments.GetValue<string>()) is JsonObject parsed)
                            {
                                function["arguments"] = parsed;
                            }
                        }
                        catch (JsonException)
                        {
                            // Not JSON: the template gets the text as it is.
                        }
                    }
                }
            }

            messages.Add(message);
            index++;
        }

        return messages;
    }
}
