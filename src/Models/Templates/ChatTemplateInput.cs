using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Templates;

/// <summary>
/// What <c>apply_chat_template(messages, tools=..., add_generation_prompt=..., **kwargs)</c> takes: the conversation
/// (a list of message objects, each as the template expects: <c>role</c>, <c>content</c>, <c>tool_calls</c>, ...), the
/// tools (JSON schemas; null when none, which templates see as <c>none</c>), whether to open the assistant's turn, and
/// any other variables (<c>enable_thinking</c>, <c>date_string</c>, <c>tools_in_user_message</c>, ...).
/// </summary>
public sealed record ChatTemplateInput(JsonArray Messages)
{
    public JsonArray? Tools { get; init; }

    public bool AddGenerationPrompt { get; init; }

    /// <summary>Other template variables; they override the special tokens (<c>bos_token</c>, ...) of the same name.</summary>
    public JsonObject? Variables { get; init; }

    /// <summary>
    /// Reads <c>{"messages": [...], "tools": [...], "add_generation_prompt": true, ...}</c>: every key but those three
    /// becomes a template variable.
    /// </summary>
    /// <exception cref="InvalidInputException">Not JSON, not an object, no <c>messages</c> list, a <c>tools</c> that is
    /// not a list or null, an <c>add_generation_prompt</c> that is not a boolean.</exception>
    public static ChatTemplateInput FromJson(string json)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"not valid JSON: {e.Message}");
        }

        if (root is not JsonObject obj)
        {
            throw new InvalidInputException("expected a JSON object with \"messages\"");
        }

        if (obj["messages"] is not JsonArray messages)
        {
            throw new InvalidInputException("\"messages\" must be a list of message objects");
        }

        var tools = obj["tools"] switch
        {
            null => null,
            JsonArray array => array,
            _ => throw new InvalidInputException("\"tools\" must be a list or null"),
        };
        var addGenerationPrompt = obj["add_generation_prompt"] switch
        {
            null => false,
            JsonValue value when value.GetValueKind() is JsonValueKind.True or JsonValueKind.False => value.GetValue<bool>(),
            _ => throw new InvalidInputException("\"add_generation_prompt\" must be true or false"),
        };
        var variables = new JsonObject();
        foreach (var (key, value) in obj)
        {
            if (key is not ("messages" or "tools" or "add_generation_prompt"))
            {
                variables[key] = value?.DeepClone();
            }
        }

        return new ChatTemplateInput((JsonArray)messages.DeepClone())
        {
            Tools = (JsonArray?)tools?.DeepClone(),
            AddGenerationPrompt = addGenerationPrompt,
            Variables = variables,
        };
    }
}
