using System.Text.Json;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di infer --mode replica</c> over several device actors on the reference fixture.</summary>
public sealed class ReplicaModeTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-replica-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData(false, "1")]
    [InlineData(true, "8")]
    public async Task Logits_of_4_rows_on_3_devices_match_transformers(bool applyPadding, string maxBatchSize)
    {
        var output = Path.Combine(_folder, "logits.safetensors");
        string[] padding = applyPadding ? ["--apply-padding"] : [];
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--mode", "replica", "--devices", "cpu,cpu,cpu", "--task", "logits",
            "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected, "--output", output, "--max-batch-size", maxBatchSize, .. padding]);
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("lm_logits")) <= 1e-4);
    }

    [Fact]
    public async Task Classification_on_3_devices_matches_transformers()
    {
        var input = Path.Combine(_folder, "cls.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = DiRunner.ExpectedTensor("cls_input_ids") });
        var output = Path.Combine(_folder, "cls-out.safetensors");
        var (exit, _, stderr) = await DiRunner.Run("infer", "--mode", "replica", "--devices", "cpu,cpu,cpu", "--task", "classify",
            "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output);
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("cls_logits")) <= 1e-4);
    }

    [Fact]
    public async Task Generation_of_7_prompts_on_3_devices_writes_7_lines_in_order_equal_to_one_device()
    {
        string[] prompts = ["a dog", "a cat", "a chicken", "The quick brown fox", "Hello", "Once upon a time there was", "x"];
        var output = Path.Combine(_folder, "generated.jsonl");
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--mode", "replica", "--devices", "cpu,cpu,cpu", "--task", "generate",
            "--model", "gpt2-tiny", "--max-new-tokens", "6", "--max-batch-size", "2", "--output", output, "--prompts", .. prompts]);
        Assert.True(exit == 0, stderr);
        var lines = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(prompts, lines.Select(l => l.GetProperty("prompt").GetString()));

        var single = Path.Combine(_folder, "single.jsonl");
        var (singleExit, _, singleStderr) = await DiRunner.Run(["infer", "--devices", "cpu", "--task", "generate", "--model", "gpt2-tiny",
            "--max-new-tokens", "6", "--max-batch-size", "7", "--output", single, "--prompts", .. prompts]);
        Assert.True(singleExit == 0, singleStderr);
        Assert.Equal(File.ReadAllLines(single), File.ReadAllLines(output));
    }
}
