namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>The real <c>di</c> program, as a user starts it.</summary>
[Collection(ProcessTests.Collection)]
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

    [Fact]
    public async Task Prompts_stop_at_the_next_option_and_output_gets_the_file()
    {
        var folder = Directory.CreateTempSubdirectory("di-prompts-").FullName;
        try
        {
            var output = Path.Combine(folder, "out.jsonl");
            var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "infer", "--model", "gpt2-tiny", "--task", "logits", "--prompts", "a", "b", "--output", output);
            Assert.True(exit == 0, stderr);
            Assert.Equal(string.Empty, stdout);
            Assert.Equal(["a", "b"], File.ReadAllLines(output).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()));

            // A misspelt option is not a third prompt: one line, exit 2, nothing written.
            var (badExit, badStdout, badStderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "infer", "--model", "gpt2-tiny", "--task", "logits", "--prompts", "a", "b", "--outptu", output + "2");
            Assert.Equal(2, badExit);
            Assert.Equal(string.Empty, badStdout);
            Assert.Equal("di: error: --prompts: '--outptu' is not an option of this command (a prompt that starts with - goes in --prompts-file) (di infer --help lists the options)", badStderr.Trim());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("infer", "--max-batch-size", "abc")]
    [InlineData("infer", "--devices", "cpu,,cpu", "--model", "gpt2-tiny", "--prompts", "a")]
    [InlineData("node", "--port", "x")]
    [InlineData("launch", "--num-processes", "two")]
    public async Task Every_input_error_exits_2_with_one_line_parser_errors_included(params string[] args)
    {
        var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), args);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.StartsWith("di: error: ", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public async Task An_unwritable_output_folder_is_found_before_any_compute()
    {
        // /proc takes no new files, even for root (a chmod would not stop root).
        var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "infer", "--model", "gpt2-tiny", "--task", "logits", "--prompts", "a", "--output", "/proc/di-out.jsonl");
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.StartsWith("di: error: --output /proc/di-out.jsonl: cannot write in folder /proc (", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}
