using System.Text.Json.Nodes;
using DistributedInference.Models.Templates;

namespace DistributedInference.Models.Tests.Templates;

/// <summary>
/// Conversations the chat-template fixtures do not have (tool round trips with dict and string arguments, tool results
/// as objects, odd text, thinking history, roles out of order, an empty conversation), through all ten real templates:
/// the eight of chat-templates and QwQ-32B and DeepSeek-V3.1 of chat-templates-more. Expected strings and errors come
/// from the real jinja2 in transformers' configuration (tests/fixtures/template-conversations/make_cases.py).
/// </summary>
public sealed class TemplateConversationTests
{
    private static readonly Lazy<JsonArray> All = new(() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, "template-conversations", "cases.json")))!["cases"]!.AsArray());

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in All.Value)
        {
            data.Add((string)c!["template"]!, (string)c["name"]!);
        }

        return data;
    }

    [Fact]
    public void Every_template_of_both_fixture_folders_is_covered()
    {
        var templates = All.Value.Select(c => (string)c!["template"]!).Distinct().ToList();
        Assert.Equal(10, templates.Count);
        Assert.Contains("Qwen-QwQ-32B", templates);
        Assert.Contains("deepseek-ai-DeepSeek-V3.1", templates);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_as_transformers_does(string template, string name)
    {
        var c = All.Value.Single(x => (string?)x!["template"] == template && (string?)x["name"] == name)!;
        var chat = HuggingFaceChatTemplate.Load(Path.Combine(Fixtures.Root, "template-conversations", (string)c["folder"]!));
        var input = new ChatTemplateInput(c["messages"]!.AsArray())
        {
            Tools = c["tools"] as JsonArray,
            AddGenerationPrompt = (bool)c["add_generation_prompt"]!,
            Variables = c["extra_context"] as JsonObject,
        };
        var options = new TemplateRenderOptions { Now = () => ChatTemplateFixtureTests.FixtureClock };
        if (c["error"] is JsonObject error)
        {
            var e = Assert.Throws<TemplateException>(() => chat.Apply(input, options));
            Assert.Equal((string?)error["message"], e.Reason);
            Assert.Equal((string?)error["type"], e.ErrorType);
        }
        else
        {
            Assert.Equal((string?)c["expected"], chat.Apply(input, options));
        }
    }
}
