using System.Text;
using System.Text.Json.Nodes;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di chat render</c> on every chat-template fixture case: the text exactly, raise_exception on stderr with exit 2.</summary>
public sealed class ChatRenderCommandTests : IDisposable
{
    private const string FixtureClock = "2025-03-14T09:26:53";
    private readonly string _folder = Directory.CreateTempSubdirectory("di-chat-render-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string WriteInput(JsonObject c, string name)
    {
        // The file layout the command documents: messages, tools, add_generation_prompt, other keys = variables.
        var input = new JsonObject
        {
            ["messages"] = c["messages"]!.DeepClone(),
            ["tools"] = c["tools"]?.DeepClone(),
            ["add_generation_prompt"] = c["add_generation_prompt"]!.DeepClone(),
        };
        foreach (var (key, value) in c["extra_context"] as JsonObject ?? [])
        {
            input[key] = value?.DeepClone();
        }

        var path = Path.Combine(_folder, name + ".json");
        File.WriteAllText(path, input.ToJsonString());
        return path;
    }

    [Fact]
    public async Task Every_fixture_case_renders_exactly_or_fails_with_the_templates_message()
    {
        var checkedCases = 0;
        foreach (var folder in Directory.GetDirectories(Path.Combine(DiRunner.Fixtures, "chat-templates")))
        {
            foreach (var node in JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "cases.json")))!["cases"]!.AsArray())
            {
                var c = node!.AsObject();
                var name = $"{Path.GetFileName(folder)} {(string)c["name"]!}";
                var input = WriteInput(c, Path.GetFileName(folder) + "-" + (string)c["name"]!);
                var (exit, stdout, stderr) = await DiRunner.Run("chat", "render", "--template", folder, "--input", input, "--now", FixtureClock);
                if (c["error"] is JsonObject error)
                {
                    Assert.True(exit == 2, $"{name}: exit {exit}");
                    Assert.Equal(string.Empty, stdout);
                    Assert.Contains((string)error["message"]!, stderr);
                    Assert.DoesNotContain('\n', stderr.TrimEnd('\n'));
                }
                else
                {
                    Assert.True(exit == 0, $"{name}: {stderr}");
                    Assert.True((string?)c["expected"] == stdout, $"{name}: rendered text differs");
                }

                checkedCases++;
            }
        }

        Assert.Equal(119, checkedCases);
    }

    [Fact]
    public async Task The_real_program_prints_utf8_with_no_newline_added_and_extra_context_spreads()
    {
        var folder = Path.Combine(DiRunner.Fixtures, "chat-templates", "meta-llama-Llama-3.2-3B-Instruct");
        var c = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "cases.json")))!["cases"]!.AsArray()
            .Single(x => (string?)x!["name"] == "date_string_kwarg")!.AsObject();
        var input = Path.Combine(_folder, "case.json");
        File.WriteAllText(input, c.ToJsonString());
        var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "chat", "render", "--template", Path.Combine(folder, "template.jinja"), "--input", input);
        Assert.True(exit == 0, stderr);
        Assert.Equal((string?)c["expected"], stdout);
        Assert.Equal(string.Empty, stderr);
        Assert.Contains("Today Date: 01 Jan 2025", stdout);
    }

    [Fact]
    public async Task Bad_input_is_one_line_and_exit_2()
    {
        var folder = Path.Combine(DiRunner.Fixtures, "chat-templates", "google-gemma-2-2b-it");
        var good = Path.Combine(_folder, "good.json");
        File.WriteAllText(good, """{"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true}""");
        var notJson = Path.Combine(_folder, "bad.json");
        File.WriteAllText(notJson, "{\"messages\": [", Encoding.UTF8);
        var noMessages = Path.Combine(_folder, "none.json");
        File.WriteAllText(noMessages, """{"msgs": []}""");
        var badTemplate = Path.Combine(_folder, "bad.jinja");
        File.WriteAllText(badTemplate, "{% if %}");
        string[][] cases =
        [
            ["chat", "render", "--template", Path.Combine(_folder, "missing"), "--input", good],
            ["chat", "render", "--template", folder, "--input", Path.Combine(_folder, "missing.json")],
            ["chat", "render", "--template", folder, "--input", notJson],
            ["chat", "render", "--template", folder, "--input", noMessages],
            ["chat", "render", "--template", folder, "--input", good, "--now", "yesterday"],
            ["chat", "render", "--template", badTemplate, "--input", good],
            ["chat", "render", "--template", _folder, "--input", good],
        ];
        foreach (var args in cases)
        {
            var (exit, stdout, stderr) = await DiRunner.Run(args);
            Assert.True(exit == 2, $"{string.Join(' ', args)}: exit {exit}, {stderr}");
            Assert.Equal(string.Empty, stdout);
            Assert.StartsWith("di: error: ", stderr);
            Assert.DoesNotContain('\n', stderr.TrimEnd('\n'));
        }

        var (ok, text, _) = await DiRunner.Run("chat", "render", "--template", folder, "--input", good);
        Assert.Equal(0, ok);
        Assert.Equal("<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n", text);
    }
}
