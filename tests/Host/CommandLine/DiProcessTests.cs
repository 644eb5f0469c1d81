using System.Diagnostics;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>The real <c>di</c> program, as a user starts it.</summary>
public sealed class DiProcessTests
{
    private static async Task<(int ExitCode, string Stdout, string Stderr)> Di(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "di.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Runs_end_to_end_and_prints_json_lines()
    {
        var (exit, stdout, stderr) = await Di("infer", "--model", "gpt2-tiny", "--prompts", "a dog", "--max-new-tokens", "3");
        Assert.True(exit == 0, stderr);
        Assert.StartsWith("{\"index\":0,\"prompt\":\"a dog\",\"output_ids\":[", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_input_is_one_line_on_stderr_without_a_stack_trace()
    {
        var (exit, stdout, stderr) = await Di("infer", "--model", DiRunner.TinyLanguageModel, "--input-ids", "/nonexistent.safetensors");
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal("di: error: /nonexistent.safetensors: no such file", stderr.Trim());
    }
}
