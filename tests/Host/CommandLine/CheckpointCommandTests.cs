using System.Text.Json.Nodes;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di checkpoint random</c>: a folder that <c>di infer</c> loads and that computes what the built-in computes.</summary>
public sealed class CheckpointCommandTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Random_folder_gives_the_built_in_logits_through_di_infer()
    {
        var model = Path.Combine(_folder, "llama");
        var (exit, stdout, stderr) = await DiRunner.Run(["checkpoint", "random", "--config", "llama-tiny", "--dtype", "fp32", "--shards", "3", "--out", model, "--seed", "5"]);
        Assert.True(exit == 0, stderr);
        Assert.Contains("3 file(s)", stdout);
        Assert.True(File.Exists(Path.Combine(model, "model.safetensors.index.json")));
        Assert.Equal("float32", JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!["torch_dtype"]!.GetValue<string>());

        var input = Path.Combine(_folder, "ids.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = tensor(new long[,] { { 1, 2, 3, 600 }, { 7, 8, 9, 10 } }) });
        var fromFolder = Path.Combine(_folder, "folder.safetensors");
        var fromBuiltIn = Path.Combine(_folder, "builtin.safetensors");
        (exit, _, stderr) = await DiRunner.Run(["infer", "--model", model, "--task", "logits", "--input-ids", input, "--output", fromFolder, "--mode", "pipeline", "--devices", "cpu,cpu"]);
        Assert.True(exit == 0, stderr);
        (exit, _, stderr) = await DiRunner.Run(["infer", "--model", "llama-tiny", "--seed", "5", "--task", "logits", "--input-ids", input, "--output", fromBuiltIn]);
        Assert.True(exit == 0, stderr);
        Assert.Equal(0.0, DiRunner.MaxAbsDiff(SafeTensorsFile.Open(fromFolder).Read("logits"), SafeTensorsFile.Open(fromBuiltIn).Read("logits")));
    }

    [Fact]
    public async Task Unknown_config_is_one_line_and_exit_2()
    {
        var (exit, _, stderr) = await DiRunner.Run(["checkpoint", "random", "--config", "nope-7b", "--out", Path.Combine(_folder, "x")]);
        Assert.Equal(2, exit);
        Assert.Contains("nope-7b", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
