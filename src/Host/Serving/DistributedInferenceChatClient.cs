using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Templates;
using Microsoft.Extensions.AI;

namespace DistributedInference.Host.Serving;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over a served decoder, on this process's devices or a cluster's
/// (the same engine as <c>di serve</c>): messages go through the model's chat template (text, function calls as
/// <c>tool_calls</c>, function results as <c>tool</c> messages; <see cref="ChatOptions.Tools"/> as the template's
/// <c>tools</c>), generation takes <see cref="ChatOptions"/>' max tokens, temperature (0: greedy), top-p, top-k, seed and
/// stop sequences, and stops at the model's end-of-sequence ids and the template's end-of-turn token. Streaming yields
/// text as it is decoded; cancelling ends the generation on its device. Tool calls are not parsed from the answer.
/// Frequency and presence penalties and response formats are refused (<see cref="NotSupportedException"/>).
/// </summary>
public sealed class DistributedInferenceChatClient(ServingHost host) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var text = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        UsageDetails? usage = null;
        string? id = null;
        await foreach (var update in GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            id ??= update.ResponseId;
            text.Append(update.Text);
            finish = update.FinishReason ?? finish;
            usage = update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details ?? usage;
        }

        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text.ToString()))
        {
            FinishReason = finish,
            Usage = usage,
            ModelId = host.Model.Name,
            ResponseId = id,
            CreatedAt = DateTimeOffset.UtcNow,
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        await host.Started.WaitAsync(cancellationToken);
        var model = host.Model;
        var engine = host.Backend.Generation ?? throw new NotSupportedException($"{model.Name} does not generate");
        if (options?.FrequencyPenalty is { } f && f != 0 || options?.PresencePenalty is { } p && p != 0)
        {
            throw new NotSupportedException("frequency and presence penalties are not supported");
        }

        if (options?.ResponseFormat is not (null or ChatResponseFormatText))
        {
            throw new NotSupportedException("response formats other than text are not supported");
        }

        var input = new ChatTemplateInput(Messages(messages, options?.Instructions)) { AddGenerationPrompt = true, Tools = Tools(options?.Tools) };
        var prompt = ChatPrompt.TokenIds(model, input);
        var room = model.ContextLength - prompt.Count;
        var maxTokens = options?.MaxOutputTokens ?? room;
        if (room <= 0 || maxTokens > room)
        {
            throw new InvalidInputException($"the prompt is {prompt.Count} tokens and {maxTokens} more were asked for, but the model's context is {model.ContextLength} tokens");
        }

        var stops = model.EndOfSequenceIds.Concat(model.EndOfTurnTokenId is { } eot ? [eot] : []).Distinct().ToList();
        var sampling = new SamplingRequest(maxTokens, options?.Temperature ?? 1.0, options?.TopP ?? 1.0, options?.TopK ?? 0, 1.0, options?.Seed, 1,
            options?.StopSequences?.ToList() ?? [], [], false, false, true, false, true, true);
        var request = new GenerationRequest($"chat-{Guid.NewGuid():N}", prompt, sampling.Parameters(maxTokens, options?.Seed ?? PromptChecks.RandomSeed(), null), stops);
        var responseId = $"chatcmpl-{Guid.NewGuid():N}";
        var completion = 0;
        var deltas = ServingMetrics.Measure(
            SequenceRunner.RunAsync(engine, request, 0, model.Tokenizer, sampling, cancellationToken), ServingMetrics.Chat, model.Name, prompt.Count, startedAt);
        await foreach (var delta in deltas)
        {
            completion += delta.Tokens.Count;
            var update = new ChatResponseUpdate(ChatRole.Assistant, delta.Text) { ResponseId = responseId, ModelId = model.Name, CreatedAt = DateTimeOffset.UtcNow };
            if (delta.Finish is { } finish)
            {
                update.FinishReason = finish == FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length;
                update.Contents.Add(new UsageContent(new UsageDetails { InputTokenCount = prompt.Count, OutputTokenCount = completion, TotalTokenCount = prompt.Count + completion }));
            }

            yield return update;
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("distributed-inference", host.Address, host.Options.ServedModelName ?? host.Options.Model)
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        // The host owns the model and its devices.
    }

    private static JsonArray Messages(IEnumerable<ChatMessage> messages, string? instructions)
    {
        var array = new JsonArray();
        if (instructions is not null)
        {
            array.Add(new JsonObject { ["role"] = "system", ["content"] = instructions });
        }

        foreach (var message in messages)
        {
            var results = message.Contents.OfType<FunctionResultContent>().ToList();
            foreach (var result in results)
            {
                array.Add(new JsonObject
                {
                    ["role"] = "tool",
                    ["tool_call_id"] = result.CallId,
                    ["content"] = result.Result switch
                    {
                        string s => s,
                        null => string.Empty,
                        var other => JsonSerializer.Serialize(other),
                    },
                });
            }

            var calls = message.Contents.OfType<FunctionCallContent>().ToList();
            if (results.Count > 0 && calls.Count == 0 && string.IsNullOrEmpty(message.Text))
            {
                continue;
            }

            var entry = new JsonObject { ["role"] = message.Role.Value, ["content"] = calls.Count > 0 && message.Text.Length == 0 ? null : message.Text };
            if (calls.Count > 0)
            {
                entry["tool_calls"] = new JsonArray(calls.Select(call => (JsonNode?)new JsonObject
                {
                    ["id"] = call.CallId,
                    ["type"] = "function",
                    ["function"] = new JsonObject
                    {
                        ["name"] = call.Name,
                        ["arguments"] = JsonSerializer.SerializeToNode(call.Arguments ?? new Dictionary<string, object?>()),
                    },
                }).ToArray());
            }

            array.Add(entry);
        }

        return array;
    }

    private static JsonArray? Tools(IList<AITool>? tools)
    {
        var functions = tools?.OfType<AIFunctionDeclaration>().ToList();
        if (functions is not { Count: > 0 })
        {
            return null;
        }

        return new JsonArray(functions.Select(f => (JsonNode?)new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject
            {
                ["name"] = f.Name,
                ["description"] = f.Description,
                ["parameters"] = JsonNode.Parse(f.JsonSchema.GetRawText()),
            },
        }).ToArray());
    }
}
