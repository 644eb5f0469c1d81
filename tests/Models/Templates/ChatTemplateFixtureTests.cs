using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models.Templates;

namespace DistributedInference.Models.Tests.Templates;

/// <summary>
/// Every case of the chat-template fixtures (tests/fixtures/chat-templates: 8 real templates, 119 conversations,
/// rendered by jinja2 3.1.2 the way transformers' <c>apply_chat_template</c> configures it): the rendered string equals
/// the expected one ordinally, and an error case fails with exactly the template's message.
/// </summary>
public sealed class ChatTemplateFixtureTests
{
    /// <summary>The clock the fixtures froze <c>strftime_now</c> at.</summary>
    public static readonly DateTime FixtureClock = new(2025, 3, 14, 9, 26, 53);

    private static string Folder(string template) => Path.Combine(Fixtures.Root, "chat-templates", template);

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var folder in Directory.GetDirectories(Path.Combine(Fixtures.Root, "chat-templates")).Order(StringComparer.Ordinal))
        {
            using var cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "cases.json")));
            foreach (var c in cases.RootElement.GetProperty("cases").EnumerateArray())
            {
                data.Add(Path.GetFileName(folder), c.GetProperty("name").GetString()!);
            }
        }

        return data;
    }

    private static JsonObject Case(string template, string name)
    {
        var cases = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder(template), "cases.json")))!["cases"]!.AsArray();
        return cases.Single(c => (string?)c!["name"] == name)!.AsObject();
    }

    private static ChatTemplateInput Input(JsonObject c) => new(c["messages"]!.AsArray())
    {
        Tools = c["tools"] as JsonArray,
        AddGenerationPrompt = (bool)c["add_generation_prompt"]!,
        Variables = c["extra_context"] as JsonObject,
    };

    [Fact]
    public void There_are_119_cases_over_8_templates()
    {
        var cases = Cases();
        Assert.Equal(119, cases.Count());
        Assert.Equal(8, cases.Select(c => (string)c[0]).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_each_case_as_transformers_does(string template, string name)
    {
        var c = Case(template, name);
        var chat = HuggingFaceChatTemplate.Load(Folder(template));
        var options = new TemplateRenderOptions { Now = () => FixtureClock };
        if (c["error"] is JsonObject error)
        {
            var e = Assert.Throws<TemplateException>(() => chat.Apply(Input(c), options));
            Assert.Equal((string?)error["message"], e.Reason);
            Assert.Equal((string?)error["type"], e.ErrorType);
            Assert.True(e.IsRaisedByTemplate);
            Assert.DoesNotContain('\n', e.Message);
            Assert.Contains(e.Reason, e.Message);
        }
        else
        {
            var rendered = chat.Apply(Input(c), options);
            Assert.Equal((string?)c["expected"], rendered);
        }
    }

    [Fact]
    public void The_template_file_equals_the_config_field_and_chat_template_jinja_wins()
    {
        foreach (var folder in Directory.GetDirectories(Path.Combine(Fixtures.Root, "chat-templates")))
        {
            var fromConfig = HuggingFaceChatTemplate.Load(folder);
            Assert.Equal(File.ReadAllText(Path.Combine(folder, "template.jinja")), fromConfig.Template!.Source);
        }

        var copy = Directory.CreateTempSubdirectory("di-chat-template-").FullName;
        try
        {
            File.Copy(Path.Combine(Folder("microsoft-Phi-3.5-mini-instruct"), "tokenizer_config.json"), Path.Combine(copy, "tokenizer_config.json"));
            File.WriteAllText(Path.Combine(copy, "chat_template.jinja"), "{{ bos_token }}[{{ messages[0].content }}]{{ eos_token }}\n");
            var chat = HuggingFaceChatTemplate.Load(copy);
            var rendered = chat.Apply(new ChatTemplateInput(new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" })));
            Assert.Equal("<s>[hi]<|endoftext|>", rendered);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public void Added_token_objects_are_read_by_content_and_null_tokens_stay_undefined()
    {
        var deepseek = HuggingFaceChatTemplate.Load(Folder("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"));
        Assert.Equal("<｜begin▁of▁sentence｜>", deepseek.SpecialToken("bos_token"));
        var qwen = HuggingFaceChatTemplate.Load(Folder("Qwen-Qwen2.5-7B-Instruct"));
        Assert.Null(qwen.SpecialToken("bos_token"));
        var probe = ChatTemplate.Parse("{{ bos_token is defined }}");
        Assert.Equal("False", probe.Render([]));
    }
}
