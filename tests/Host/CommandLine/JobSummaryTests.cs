using System.Text.Json;
using System.Text.RegularExpressions;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// Every job ends with one summary line on stderr; --quiet drops it and the other informational lines (pipeline plan,
/// stages, rates) but no warning; --json-summary writes it as JSON; sampling options without --do-sample are warned about.
/// </summary>
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
        Assert.True(Regex.IsMatch(stderr, @"di: done: .* logits, pipeline on 2 device\(s\): 4 row\(s\) in .*, bubble fraction \d\.\d{3}"), stderr);
        Assert.DoesNotContain("random weights", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("logits")]
    [InlineData("generate")]
    public async Task Quiet_leaves_out_the_pipeline_plan_and_stage_lines_too(string task)
    {
        var model = task == "logits" ? DiRunner.TinyLanguageModel : Path.Combine(DiRunner.Fixtures, "qwen3-tiny", "model");
        var input = task == "logits" ? DiRunner.Expected : Path.Combine(DiRunner.Fixtures, "qwen3-tiny", "expected.safetensors");
        string[] job = ["infer", "--model", model, "--task", task, "--input-ids", input, "--max-new-tokens", "2", "--mode", "pipeline", "--devices", "cpu,cpu",
            "--output", Path.Combine(_folder, "out.safetensors")];
        var (exit, _, loud) = await DiRunner.Run(job);
        Assert.True(exit == 0, loud);
        Assert.Contains("di: pipeline plan (auto):", loud, StringComparison.Ordinal);
        Assert.Contains("di: stage 0: ", loud, StringComparison.Ordinal);

        (exit, _, var quiet) = await DiRunner.Run([.. job, "--quiet"]);
        Assert.True(exit == 0, quiet);
        Assert.Equal(string.Empty, quiet);
    }

    [Fact]
    public async Task Sampling_options_without_do_sample_are_warned_about()
    {
        string[] job = ["infer", "--model", "gpt2-tiny", "--input-ids", DiRunner.Expected, "--max-new-tokens", "2", "--quiet", "--temperature", "0.7", "--top-k", "5"];
        var (exit, _, stderr) = await DiRunner.Run(job);
        Assert.True(exit == 0, stderr);
        Assert.Contains("di: warning: --temperature, --top-k take effect only with --do-sample; without it generation is greedy and ignores them", stderr, StringComparison.Ordinal);

        (exit, _, stderr) = await DiRunner.Run([.. job, "--do-sample"]);
        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("warning", stderr, StringComparison.Ordinal);
    }
}
