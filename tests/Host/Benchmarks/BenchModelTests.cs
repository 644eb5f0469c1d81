using DistributedInference.Host.Benchmarks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.Benchmarks;

/// <summary>
/// <c>di bench model</c> prints each round as it ends (a bench cut short by a timeout keeps what it measured) and
/// compares with the best of several matmuls, not one per round.
/// </summary>
public sealed class BenchModelTests
{
    [Fact]
    public async Task Each_round_is_printed_before_the_summary_and_the_peak_is_the_best_of_every_matmul()
    {
        var (exit, stdout, stderr) = await DiRunner.Run("bench", "model", "--model", "gpt2-tiny", "--batch", "1", "--sequence", "8", "--new-tokens", "2",
            "--rounds", "2", "--python", "none", "--matmul-size", "32", "--bandwidth-mb", "1");
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n');
        var first = Array.FindIndex(lines, l => l.StartsWith("round 1/2: matmul ", StringComparison.Ordinal));
        var second = Array.FindIndex(lines, l => l.StartsWith("round 2/2: matmul ", StringComparison.Ordinal));
        var figures = Array.FindIndex(lines, l => l.StartsWith("figures: ", StringComparison.Ordinal));
        Assert.True(first >= 0 && first < second && second < figures, stdout);
        Assert.Contains("the matmul peak is the best of 6 matmuls (3 a round", lines[figures], StringComparison.Ordinal);
        Assert.Contains("GFLOP/s (TorchSharp, best of 6)", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("llama3-tiny", "q_proj k_proj v_proj o_proj gate_proj up_proj down_proj lm_head")]
    [InlineData("gpt2-tiny", "attn.c_attn attn.c_proj mlp.c_fc mlp.c_proj lm_head")]
    public async Task A_decoder_shows_its_decode_step_both_ways_and_its_matmuls_kind_by_kind(string fixture, string kinds)
    {
        var model = fixture == "gpt2-tiny" ? DiRunner.TinyLanguageModel : Path.Combine(DiRunner.Fixtures, fixture, "model");
        var (exit, stdout, stderr) = await DiRunner.Run("bench", "model", "--model", model, "--batch", "2", "--sequence", "8", "--new-tokens", "3",
            "--rounds", "1", "--python", "none", "--matmul-size", "32", "--bandwidth-mb", "1", "--threads", "1");
        Assert.True(exit == 0, stderr);
        if (!System.Runtime.Intrinsics.X86.Fma.IsSupported || !System.Runtime.Intrinsics.X86.Avx2.IsSupported)
        {
            Assert.DoesNotContain("decode step by op", stdout, StringComparison.Ordinal);
            return;
        }

        Assert.Matches(@"round 1/1: .*; decode [0-9.]+ ms per step \([0-9.]+ ms through libtorch's linear; the step's matmuls alone [0-9.]+ ms on SkinnyLinear, [0-9.]+ ms through libtorch\)", stdout);
        Assert.Matches(@"decode step of 2 row\(s\) with every matmul through libtorch's linear \(its BLAS above\) instead: [0-9.]+ ms, speed with SkinnyLinear / without [0-9.]+x", stdout);
        var byOp = stdout.Split('\n').Single(l => l.StartsWith("  decode step by op", StringComparison.Ordinal));
        foreach (var kind in kinds.Split(' '))
        {
            Assert.Matches($" {System.Text.RegularExpressions.Regex.Escape(kind)} [0-9.]+/[0-9.]+[,;]", byOp);
        }
    }

    [Fact]
    public void The_probe_reports_the_fastest_of_its_matmuls()
    {
        Models.Runtime.LibTorch.Initialize();
        var result = HardwareProbe.Measure(CPU, ScalarType.Float32, 32, 1 << 16, matmulTrials: 4);
        Assert.Equal(4, result.MatmulTrials.Count);
        Assert.Equal(result.MatmulTrials.Max(), result.MatmulFlopsPerSecond);
    }
}
