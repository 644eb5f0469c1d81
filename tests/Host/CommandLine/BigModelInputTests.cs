using DistributedInference.Models.Loading;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>Edges of the big-model options a review found: each one line and exit 2, or a sensible result.</summary>
public sealed class BigModelInputTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-big-inputs-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Llama => Path.Combine(DiRunner.Fixtures, "llama3-tiny", "model");

    [Theory]
    [InlineData("infer", "--join", "127.0.0.1:1")]
    [InlineData("launch", "--num-processes", "2", "--")]
    public async Task Max_memory_off_this_machine_is_refused_not_ignored(string command, string a, string b, string? c = null)
    {
        string[] prefix = command == "infer" ? ["infer", a, b] : ["launch", a, b, c!, "infer"];
        var (exit, stdout, stderr) = await DiRunner.Run([.. prefix, "--mode", "pipeline", "--task", "generate", "--model", Llama, "--prompts", "hi", "--max-memory", "cpu=1KB"]);
        Assert.Equal(2, exit);
        Assert.Empty(stdout);
        Assert.Contains("--max-memory plans a pipeline on this machine's devices", Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pipelined_generation_of_no_new_tokens_returns_the_prompts()
    {
        var output = Path.Combine(_folder, "none.safetensors");
        var input = Path.Combine(DiRunner.Fixtures, "llama3-tiny", "expected.safetensors");
        var (exit, _, stderr) = await DiRunner.Run("infer", "--model", Llama, "--task", "generate", "--mode", "pipeline", "--devices", "cpu,cpu,cpu",
            "--input-ids", input, "--max-new-tokens", "0", "--output", output);
        Assert.True(exit == 0, stderr);
        Assert.Equal(SafeTensorsFile.Open(input).Read("input_ids").data<long>().ToArray(), SafeTensorsFile.Open(output).Read("output_ids").data<long>().ToArray());
    }

    [Fact]
    public async Task A_checkpoint_out_that_is_a_file_is_an_input_error()
    {
        var file = Path.Combine(_folder, "a-file");
        await File.WriteAllTextAsync(file, "x");
        var (exit, _, stderr) = await DiRunner.Run("checkpoint", "random", "--config", "llama-tiny", "--out", file);
        Assert.Equal(2, exit);
        Assert.Contains($"--out {file}: is a file", stderr, StringComparison.Ordinal);
    }
}
