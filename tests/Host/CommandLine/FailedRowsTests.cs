using System.Text.Json;
using DistributedInference.Host.Inference;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// <c>di infer --mode replica</c> when a row fails on every device (a model that throws on it): JSON lines name it,
/// a safetensors output is refused unless <c>--allow-partial</c>, which adds <c>row_ok</c>.
/// </summary>
public sealed class FailedRowsTests : IDisposable
{
    private const long Poison = 7;
    private readonly string _folder = Directory.CreateTempSubdirectory("di-failed-rows-").FullName;
    private readonly string _input;

    public FailedRowsTests()
    {
        // Six rows of four ids; row 2 starts with the poison id, which the wrapped model refuses on every device.
        _input = Path.Combine(_folder, "ids.safetensors");
        using var ids = arange(24, ScalarType.Int64).view(6, 4).add(10);
        ids[2, 0] = tensor(Poison);
        SafeTensorsFile.Write(_input, new Dictionary<string, Tensor> { ["input_ids"] = ids });
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private async Task<(int Exit, string Stdout, string Stderr)> Infer(bool poisoned, params string[] extra)
    {
        using var fault = poisoned ? FaultInjection.Wrap(factory => device => new PoisonedReplica(factory(device))) : null;
        return await DiRunner.Run(["infer", "--mode", "replica", "--devices", "cpu,cpu", "--task", "logits", "--model", "gpt2-tiny",
            "--input-ids", _input, "--max-batch-size", "4", "--quiet", .. extra]);
    }

    [Fact]
    public async Task Json_lines_name_the_failed_row_and_answer_every_other_row_as_a_healthy_run_does()
    {
        var (exit, stdout, stderr) = await Infer(poisoned: true);
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(6, lines.Count);
        Assert.Equal(Enumerable.Range(0, 6), lines.Select(l => l.GetProperty("index").GetInt32()));
        Assert.Contains("poisoned row", lines[2].GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.False(lines[2].TryGetProperty("next_token_id", out _));
        Assert.Contains("1 row failed (2)", stderr, StringComparison.Ordinal);

        var (healthyExit, healthy, healthyErr) = await Infer(poisoned: false);
        Assert.True(healthyExit == 0, healthyErr);
        var expected = healthy.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var actual = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(expected.Where((_, i) => i != 2), actual.Where((_, i) => i != 2));
    }

    [Fact]
    public async Task A_safetensors_output_with_a_failed_row_fails_the_job_with_one_line_and_writes_nothing()
    {
        var output = Path.Combine(_folder, "out.safetensors");
        var (exit, _, stderr) = await Infer(poisoned: true, "--output", output);
        Assert.Equal(1, exit);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("di: error", StringComparison.Ordinal));
        Assert.Contains("1 row failed (2); row 2: ", line, StringComparison.Ordinal);
        Assert.Contains("--allow-partial", line, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task Allow_partial_in_pipeline_mode_is_a_one_line_error()
    {
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--mode", "pipeline", "--devices", "cpu,cpu", "--task", "logits", "--model", "gpt2-tiny",
            "--input-ids", _input, "--output", Path.Combine(_folder, "out.safetensors"), "--allow-partial"]);
        Assert.Equal(2, exit);
        Assert.Contains("--allow-partial is for --mode replica", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_folder, "out.safetensors")));
    }

    [Fact]
    public async Task Allow_partial_writes_the_other_rows_and_a_row_ok_tensor()
    {
        var output = Path.Combine(_folder, "partial.safetensors");
        var (exit, _, stderr) = await Infer(poisoned: true, "--output", output, "--allow-partial");
        Assert.True(exit == 0, stderr);
        var healthyOutput = Path.Combine(_folder, "healthy.safetensors");
        var (healthyExit, _, healthyErr) = await Infer(poisoned: false, "--output", healthyOutput);
        Assert.True(healthyExit == 0, healthyErr);

        var file = SafeTensorsFile.Open(output);
        using var rowOk = file.Read("row_ok");
        Assert.Equal(ScalarType.Byte, rowOk.dtype);
        Assert.Equal(new byte[] { 1, 1, 0, 1, 1, 1 }, rowOk.data<byte>().ToArray());
        using var logits = file.Read("logits");
        using var healthy = SafeTensorsFile.Open(healthyOutput).Read("logits");
        Assert.Equal(0.0, logits[2].abs().max().ToDouble());
        foreach (var row in new[] { 0, 1, 3, 4, 5 })
        {
            Assert.True(DiRunner.MaxAbsDiff(logits[row], healthy[row]) <= 1e-5, $"row {row}");
        }
    }

    // The model refuses (with a retryable error) any batch holding a row that starts with the poison id.
    private sealed class PoisonedReplica(IReplicaModel inner) : IReplicaModel
    {
        public string Description => inner.Description;

        public ReplicaSpec? Spec => inner.Spec;

        public object Run(object rows)
        {
            var ids = (Tensor)((IReadOnlyDictionary<string, object>)rows)[TokenRows.InputIds];
            using var first = ids.select(1, 0);
            using var hit = first.eq(Poison).any();
            return hit.ToBoolean() ? throw new InvalidOperationException($"poisoned row (starts with id {Poison})") : inner.Run(rows);
        }

        public void Dispose() => inner.Dispose();
    }
}
