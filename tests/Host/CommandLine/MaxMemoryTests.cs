using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>--max-memory</c>: pipeline stages planned within per-device budgets; a model that cannot fit is refused before any weight is read.</summary>
public sealed class MaxMemoryTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-maxmem-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Ids()
    {
        var input = Path.Combine(_folder, "ids.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = tensor(new long[,] { { 1, 2, 3, 4 } }) });
        return input;
    }

    [Fact]
    public async Task An_8b_model_that_cannot_fit_is_refused_at_once_with_what_it_needs()
    {
        var peak = PeakResidentBytes();
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", "llama-3.1-8b", "--mode", "pipeline", "--devices", "cpu,cpu", "--dtype", "bf16",
            "--task", "logits", "--input-ids", Ids(), "--max-memory", "cpu=12GiB"]);
        Assert.Equal(2, exit);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("the model needs 15.0 GiB", stderr, StringComparison.Ordinal);
        Assert.Contains("the devices offer 12.0 GiB (cpu=12.0 GiB)", stderr, StringComparison.Ordinal);

        // 16 GB of bf16 weights were never drawn: this process's peak resident memory grew by far less than the model
        // (drawing touches every page; the in-process tests beside this one use megabytes).
        var grown = PeakResidentBytes() - peak;
        Assert.True(grown < (2L << 30), $"peak resident memory grew by {grown >> 20} MiB");
    }

    // This process's peak resident set (VmHWM of /proc/self/status), in bytes.
    private static long PeakResidentBytes()
    {
        var line = File.ReadLines("/proc/self/status").Single(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    [Fact]
    public async Task A_fitting_model_prints_its_memory_plan_and_gives_the_fixture_logits()
    {
        var fixture = Path.Combine(DiRunner.Fixtures, "llama3-tiny");
        var output = Path.Combine(_folder, "logits.safetensors");
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Path.Combine(fixture, "model"), "--mode", "pipeline", "--devices", "cpu,cpu,cpu",
            "--task", "logits", "--input-ids", Path.Combine(fixture, "expected.safetensors"), "--output", output, "--max-memory", "cpu=1GiB"]);
        Assert.True(exit == 0, stderr);
        Assert.Contains("auto within --max-memory cpu=1GiB", stderr, StringComparison.Ordinal);
        Assert.Equal(3, stderr.Split('\n').Count(l => l.Contains("memory: weights", StringComparison.Ordinal) && l.Contains("of 0.3 GiB", StringComparison.Ordinal)));
        var mask = SafeTensorsFile.Open(Path.Combine(fixture, "expected.safetensors")).Read("attention_mask").to(ScalarType.Bool);
        var diff = (SafeTensorsFile.Open(output).Read("logits") - SafeTensorsFile.Open(Path.Combine(fixture, "expected.safetensors")).Read("logits")).abs()[mask].max().ToDouble();
        Assert.True(diff <= 1e-4, $"{diff}");
    }

    [Fact]
    public async Task Max_memory_outside_pipeline_auto_is_a_one_line_error()
    {
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", "llama-tiny", "--task", "logits", "--input-ids", Ids(), "--max-memory", "cpu=1GiB"]);
        Assert.Equal(2, exit);
        Assert.Contains("--max-memory plans pipeline stages", stderr, StringComparison.Ordinal);
    }
}
