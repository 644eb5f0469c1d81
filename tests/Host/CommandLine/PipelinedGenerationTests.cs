using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// <c>di infer --mode pipeline --task generate</c>: the Llama-family fixtures' greedy ids through three stages (in this
/// process and in three launched node processes), and sampled ids equal to replica mode's for the same seed.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class PipelinedGenerationTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-pipegen-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    private static Tensor Expected(string fixture, string name) =>
        SafeTensorsFile.Open(Path.Combine(DiRunner.Fixtures, fixture, "expected.safetensors")).Read(name);

    private string Prompts(string fixture)
    {
        var input = Path.Combine(_folder, $"{fixture}-prompts.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor>
        {
            ["input_ids"] = Expected(fixture, "greedy_input_ids"),
            ["attention_mask"] = Expected(fixture, "greedy_attention_mask"),
        });
        return input;
    }

    [Theory]
    [InlineData("llama3-tiny")]
    [InlineData("qwen3-tiny")]
    public async Task Greedy_ids_through_three_stages_match_the_fixture(string fixture)
    {
        var output = Path.Combine(_folder, "out.safetensors");
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Model(fixture), "--task", "generate", "--max-new-tokens", "10",
            "--input-ids", Prompts(fixture), "--output", output, "--mode", "pipeline", "--devices", "cpu,cpu,cpu", "--num-chunks", "2"]);
        Assert.True(exit == 0, stderr);
        Assert.Contains("tokens/s, time per output token", stderr, StringComparison.Ordinal);
        Assert.Equal(Expected(fixture, "greedy_output").data<long>().ToArray(), SafeTensorsFile.Open(output).Read("output_ids").data<long>().ToArray());
    }

    [Fact]
    public async Task Sampled_ids_equal_replica_mode_with_the_same_seed()
    {
        string[] sampling = ["--do-sample", "--temperature", "0.7", "--top-k", "40", "--seed", "9", "--max-new-tokens", "12"];
        var pipelined = Path.Combine(_folder, "pipeline.safetensors");
        var replica = Path.Combine(_folder, "replica.safetensors");
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Model("qwen3-tiny"), "--task", "generate", "--input-ids", Prompts("qwen3-tiny"),
            "--output", pipelined, "--mode", "pipeline", "--devices", "cpu,cpu,cpu", "--num-chunks", "2", .. sampling]);
        Assert.True(exit == 0, stderr);
        (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Model("qwen3-tiny"), "--task", "generate", "--input-ids", Prompts("qwen3-tiny"),
            "--output", replica, "--mode", "replica", "--devices", "cpu,cpu", "--max-batch-size", "1", .. sampling]);
        Assert.True(exit == 0, stderr);
        Assert.Equal(SafeTensorsFile.Open(replica).Read("output_ids").data<long>().ToArray(), SafeTensorsFile.Open(pipelined).Read("output_ids").data<long>().ToArray());
    }

    [Theory]
    [InlineData("pipeline", "cpu,cpu")]
    [InlineData("replica", "cpu")]
    public async Task Ids_without_a_mask_are_padded_where_the_declared_pad_id_is(string mode, string devices)
    {
        // transformers#17426: generate infers the mask from pad_token_id (not an eos id) when none is given. mistral-tiny's
        // greedy prompts are left-padded with 0; declare pad_token_id 0 and leave the mask out.
        var model = Path.Combine(_folder, "mistral-pad0");
        Directory.CreateDirectory(model);
        foreach (var file in Directory.GetFiles(Model("mistral-tiny")))
        {
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        }

        var config = Path.Combine(model, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"eos_token_id\": 2,", "\"eos_token_id\": 2, \"pad_token_id\": 0,", StringComparison.Ordinal));
        var input = Path.Combine(_folder, "no-mask.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = Expected("mistral-tiny", "greedy_input_ids") });
        var output = Path.Combine(_folder, "out.safetensors");
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", model, "--task", "generate", "--max-new-tokens", "10",
            "--input-ids", input, "--output", output, "--mode", mode, "--devices", devices]);
        Assert.True(exit == 0, stderr);
        Assert.Equal(Expected("mistral-tiny", "greedy_output").data<long>().ToArray(), SafeTensorsFile.Open(output).Read("output_ids").data<long>().ToArray());
    }

    [Fact]
    public async Task Three_node_processes_generate_the_fixture_greedy_ids()
    {
        var output = Path.Combine(_folder, "launched.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(4), "launch", "--num-processes", "3", "--", "infer", "--mode", "pipeline", "--devices", "cpu",
            "--task", "generate", "--max-new-tokens", "10", "--model", Model("llama3-tiny"), "--input-ids", Prompts("llama3-tiny"), "--output", output, "--num-chunks", "2");
        Assert.True(exit == 0, stderr);
        Assert.Contains("pipeline plan over 3 node(s)", stderr, StringComparison.Ordinal);
        // Each node's stage says what it loaded and its own process's resident peak.
        Assert.Equal(3, stderr.Split('\n').Count(l => l.StartsWith("di: stage ", StringComparison.Ordinal) && l.Contains("MB of weights loaded, process resident ", StringComparison.Ordinal)));
        Assert.Equal(Expected("llama3-tiny", "greedy_output").data<long>().ToArray(), SafeTensorsFile.Open(output).Read("output_ids").data<long>().ToArray());
    }
}
