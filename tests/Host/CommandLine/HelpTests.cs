using System.CommandLine;
using DistributedInference.Host.CommandLine;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>Every option of every command says what it does in --help.</summary>
[Collection(ProcessTests.Collection)]
public sealed class HelpTests
{
    private static IEnumerable<Command> Commands(Command command) => [command, .. command.Subcommands.SelectMany(Commands)];

    [Fact]
    public void Every_option_of_every_command_has_a_description()
    {
        var missing = Commands(DiCommandLine.Create())
            .SelectMany(command => command.Options.Select(option => (Command: command.Name, Option: option)))
            .Where(o => string.IsNullOrWhiteSpace(o.Option.Description))
            .Select(o => $"{o.Command} {o.Option.Name}")
            .ToList();
        Assert.Empty(missing);
    }

    [Fact]
    public async Task Infer_help_describes_every_family_task_and_built_in()
    {
        var (exit, stdout, stderr) = await DiRunner.Run("infer", "--help");
        Assert.True(exit == 0, stderr);
        var text = string.Join(" ", stdout.Split((char[])['\n', ' '], StringSplitOptions.RemoveEmptyEntries));
        foreach (var name in Models.Auto.AutoModelSource.ModelTypes.Concat(Models.Auto.AutoModelSource.BuiltIns).Concat(["logits", "classify", "generate", "embed", "tokenizer.json"]))
        {
            Assert.Contains(name, text, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("GPT-2 folder", text, StringComparison.Ordinal);
        Assert.DoesNotContain("tokenized with GPT-2's tokenizer", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_help_explains_task_dtype_max_new_tokens_and_libtorch()
    {
        var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "node", "--help");
        Assert.True(exit == 0, stderr);
        foreach (var option in new[] { "--task", "--dtype", "--max-new-tokens", "--libtorch", "--join", "--join-timeout", "--seed", "--verbose" })
        {
            var line = stdout.Split('\n').Single(l => l.TrimStart().StartsWith(option + " ", StringComparison.Ordinal) || l.TrimStart().StartsWith(option + "  ", StringComparison.Ordinal));
            Assert.True(line.Trim().Length > option.Length + 20, $"no description: {line}");
        }
    }
}
