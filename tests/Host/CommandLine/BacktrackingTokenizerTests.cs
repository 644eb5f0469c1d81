using System.Text.Json.Nodes;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// A tokenizer.json whose Split regex backtracks exponentially (<c>(a+)+$</c>) is one line and exit 2, never a Rust
/// panic that aborts the process (it was exit 134 and a backtrace on a 41-character prompt).
/// </summary>
public sealed class BacktrackingTokenizerTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-backtrack-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("tokenize")]
    [InlineData("infer")]
    public async Task A_backtracking_split_regex_is_one_line_and_exit_2(string command)
    {
        foreach (var file in Directory.GetFiles(Path.Combine(DiRunner.Fixtures, "llama3-tiny", "model")))
        {
            File.Copy(file, Path.Combine(_folder, Path.GetFileName(file)));
        }

        var path = Path.Combine(_folder, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"] = new JsonObject { ["Regex"] = "(a+)+$" };
        File.WriteAllText(path, json.ToJsonString());

        var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), command, "--model", _folder, "--prompts", new string('a', 5000) + "!");
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal(["di: error: " + path + ": the pre_tokenizer regex \"(a+)+$\" repeats \"(a+)+\", a group that can match in several ways: the Rust tokenizer backtracks exponentially on it and aborts the process on long inputs, so this tokenizer is refused"],
            stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
