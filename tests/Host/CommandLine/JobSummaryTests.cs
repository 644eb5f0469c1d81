using System.Text.Json;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>Every job ends with one summary line on stderr; --quiet drops it; --json-summary writes it as JSON.</summary>
public sealed class JobSummaryTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-summary-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task A_job_ends_with_one_summary_line_and_writes_it_as_json()
    {
        var summary = Path.Combine(_folder, "summary.json");
        var (exit, stdout, stderr) = await DiRunner.Run("infer", "--model", "gpt2-tiny", "--task", "generate", "--input-ids", DiRunner.Expected,
            "--max-new-tokens", "3", "--devices", "cpu,cpu", "--json-summary", summary);
        Assert.True(exit == 0, stderr);
        Assert.Equal(4, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        var line = Assert.Single(stderr.Split('\n'), l => l.StartsWith("di: done:", StringComparison.Ordinal));
        Assert.Contains("gpt2-tiny generate, replica on 2 device(s): 4 row(s)", line, StringComparison.Ordinal);
        Assert.Contains("generated tokens/s", line, StringComparison.Ordinal);

        using var json = JsonDocument.Parse(File.ReadAllText(summary));
        Assert.Equal(4, json.RootElement.GetProperty("rows").GetInt64());
        Assert.Equal(64, json.RootElement.GetProperty("input_tokens").GetInt64());
        Assert.InRange(json.RootElement.GetProperty("generated_tokens").GetInt64(), 1, 12);
        Assert.True(json.RootElement.GetProperty("wall_seconds").GetDouble() > 0);
    }

    [Fact]
    public async Task Quiet_leaves_the_summary_out_and_says_random_weights_once()
    {
        var (exit, _, stderr) = await DiRunner.Run("infer", "--model", "gpt2-tiny", "--task", "logits", "--input-ids", DiRunner.Expected, "--quiet");
        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("di: done:", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Split('\n'), l => l.Contains("random weights", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Pipeline_summary_gives_the_bubble_fraction()
    {
        var (exit, _, stderr) = await DiRunner.Run("infer", "--model", DiRunner.TinyLanguageModel, "--task", "logits", "--input-ids", DiRunner.Expected,
            "--mode", "pipeline", "--devices", "cpu,cpu", "--output", Path.Combine(_folder, "out.safetensors"));
        Assert.True(exit == 0, stderr);
        Assert.Matches(@"di: done: .* logits, pipeline on 2 device\(s\): 4 row\(s\) in .*, bubble fraction \d\.\d{3}", stderr);
        Assert.DoesNotContain("random weights", stderr, StringComparison.Ordinal);
    }
}
