using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di infer --mode pipeline</c> on the reference fixture.</summary>
public sealed class PipelineModeTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-pipeline-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("cpu,cpu", "h.1", "2", "4")]
    [InlineData("cpu,cpu,cpu", "auto", "3", "4")]
    [InlineData("cpu,cpu,cpu", "auto", "3", "3")]
    [InlineData("cpu,cpu", "auto", "1", "1")]
    public async Task Logits_through_the_pipeline_match_transformers(string devices, string splitPoints, string numChunks, string rowsPerCall)
    {
        var output = Path.Combine(_folder, "logits.safetensors");
        var (exit, _, stderr) = await DiRunner.Run("infer", "--mode", "pipeline", "--devices", devices, "--split-points", splitPoints,
            "--num-chunks", numChunks, "--max-batch-size", rowsPerCall, "--gather-output", "--task", "logits",
            "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected, "--output", output);
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("lm_logits")) <= 1e-4);
        Assert.Contains("di: pipeline plan", stderr, StringComparison.Ordinal);
        Assert.Contains("bubble fraction", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Classification_through_the_pipeline_matches_transformers()
    {
        var input = Path.Combine(_folder, "cls.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = DiRunner.ExpectedTensor("cls_input_ids") });
        var output = Path.Combine(_folder, "cls-out.safetensors");
        var (exit, _, stderr) = await DiRunner.Run("infer", "--mode", "pipeline", "--devices", "cpu,cpu", "--task", "classify",
            "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output, "--num-chunks", "3");
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("cls_logits")) <= 1e-4);
    }

    [Theory]
    [InlineData(new[] { "--devices", "cpu,cpu", "--split-points", "h.7" }, "unknown split point 'h.7'")]
    [InlineData(new[] { "--devices", "cpu,cpu,cpu,cpu,cpu" }, "5 stages but the model has only 4 layers")]
    [InlineData(new[] { "--devices", "cpu,cpu", "--num-chunks", "0" }, "--num-chunks must be positive")]
    [InlineData(new[] { "--devices", "cpu,cpu", "--task", "generate" }, "generate runs in replica mode")]
    public async Task Impossible_pipelines_are_one_line_errors(string[] args, string message)
    {
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--mode", "pipeline", "--model", DiRunner.TinyLanguageModel,
            "--input-ids", DiRunner.Expected, .. args.Contains("--task") ? args : [.. args, "--task", "logits"]]);
        Assert.Equal(2, exit);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
