namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>The real <c>di</c> program, as a user starts it.</summary>
public sealed class DiProcessTests
{
    [Fact]
    public async Task Runs_end_to_end_and_prints_json_lines()
    {
        var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "infer", "--model", "gpt2-tiny", "--prompts", "a dog", "--max-new-tokens", "3");
        Assert.True(exit == 0, stderr);
        Assert.StartsWith("{\"index\":0,\"prompt\":\"a dog\",\"output_ids\":[", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_input_is_one_line_on_stderr_without_a_stack_trace()
    {
        var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "infer", "--model", DiRunner.TinyLanguageModel, "--input-ids", "/nonexistent.safetensors");
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal("di: error: /nonexistent.safetensors: no such file", stderr.Trim());
    }
}
