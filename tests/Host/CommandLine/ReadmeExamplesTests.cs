using System.Text.RegularExpressions;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>README's examples write their files into <c>out/</c>, which git ignores, or into /tmp: never into the repository's tracked tree.</summary>
public sealed partial class ReadmeExamplesTests
{
    // The commands README gives to run: the lines of its sh blocks, and inline code that starts with di or dotnet.
    private static IEnumerable<string> Commands(string[] readme)
    {
        var shell = false;
        foreach (var line in readme)
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                shell = line.Trim() == "```sh";
                continue;
            }

            if (shell)
            {
                yield return line;
                continue;
            }

            foreach (Match span in InlineCode().Matches(line))
            {
                if (span.Groups[1].Value.StartsWith("di ", StringComparison.Ordinal) || span.Groups[1].Value.StartsWith("dotnet ", StringComparison.Ordinal))
                {
                    yield return span.Groups[1].Value;
                }
            }
        }
    }

    [Fact]
    public void Every_file_an_example_writes_is_in_out_or_tmp_and_git_ignores_out()
    {
        var root = DiRunner.RepositoryRoot();
        var written = Commands(File.ReadAllLines(Path.Combine(root, "README.md")))
            .SelectMany(command => WrittenFile().Matches(command).Select(m => m.Groups[2].Value))
            .ToList();
        Assert.True(written.Count >= 10, string.Join(", ", written));
        Assert.All(written, path => Assert.True(
            path.StartsWith("out/", StringComparison.Ordinal) || path.StartsWith("/tmp/", StringComparison.Ordinal) || path.All(c => char.IsUpper(c) || c == '.'),
            $"README writes {path} into the repository"));
        Assert.Contains("/out/", File.ReadAllLines(Path.Combine(root, ".gitignore")));
    }

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"(--output-dir|--output|--json-summary|--out|--config-file|di cert|>)\s+([^\s|`]+)")]
    private static partial Regex WrittenFile();
}
