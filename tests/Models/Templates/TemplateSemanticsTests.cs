using System.Text.Json.Nodes;
using DistributedInference.Models.Templates;

namespace DistributedInference.Models.Tests.Templates;

/// <summary>
/// The template engine's semantics, case by case, against the real jinja2 (tests/fixtures/template-semantics: each
/// snippet rendered by jinja2 3.1.6 in the environment transformers builds for chat templates, by make_cases.py beside
/// it): whitespace control, literals, Python operators and printing, attribute and item access, str methods, every
/// filter and test templates use, loops, scopes, macros, tojson, undefined values, and the errors (type and message).
/// </summary>
public sealed class TemplateSemanticsTests
{
    private static readonly Lazy<JsonArray> All = new(() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, "template-semantics", "cases.json")))!["cases"]!.AsArray());

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var c in All.Value)
        {
            data.Add((string)c!["name"]!);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Renders_as_jinja2_does(string name)
    {
        var c = All.Value.Single(x => (string?)x!["name"] == name)!;
        var options = new TemplateRenderOptions { Now = () => ChatTemplateFixtureTests.FixtureClock };
        var variables = c["context"]!.AsObject();
        if (c["error"] is JsonObject error)
        {
            var e = Assert.Throws<TemplateException>(() => ChatTemplate.Parse((string)c["template"]!, name).Render(variables, options));
            Assert.Equal((string?)error["message"], e.Reason);
            Assert.Equal((string?)error["type"], e.ErrorType);
            Assert.DoesNotContain('\n', e.Message);
            Assert.StartsWith(name, e.Message);
        }
        else
        {
            Assert.Equal((string?)c["expected"], ChatTemplate.Parse((string)c["template"]!, name).Render(variables, options));
        }
    }
}
