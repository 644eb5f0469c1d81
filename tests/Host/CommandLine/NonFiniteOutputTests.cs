using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// A checkpoint whose weights hold NaN gives NaN logits: a warning line, or with --strict a failure and no file; generation
/// never decodes from them (transformers#33294): the rows fail, in replica and pipeline mode.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class NonFiniteOutputTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-nan-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string NanModel()
    {
        var model = Path.Combine(_folder, "nan-lm");
        Directory.CreateDirectory(model);
        File.Copy(Path.Combine(DiRunner.TinyLanguageModel, "config.json"), Path.Combine(model, "config.json"));
        var weights = SafeTensorsFile.ReadAll(Path.Combine(DiRunner.TinyLanguageModel, "model.safetensors"));
        weights["transformer.ln_f.weight"] = full_like(weights["transformer.ln_f.weight"], double.NaN);
        SafeTensorsFile.Write(Path.Combine(model, "model.safetensors"), weights);
        return model;
    }

    [Fact]
    public async Task NaN_logits_get_one_warning_line_and_exit_0_or_with_strict_exit_1_and_no_file()
    {
        var model = NanModel();
        var output = Path.Combine(_folder, "logits.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "infer", "--model", model, "--task", "logits", "--input-ids", DiRunner.Expected, "--output", output);
        Assert.True(exit == 0, stderr);
        Assert.Single(stderr.Split('\n'), l => l.StartsWith("di: warning: ", StringComparison.Ordinal));
        Assert.Contains("NaN/Inf value(s) in the output, in 4 of 4 row(s) (first: row 0)", stderr, StringComparison.Ordinal);
        Assert.True(File.Exists(output));

        var strictOutput = Path.Combine(_folder, "strict.safetensors");
        var (strictExit, _, strictStderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "infer", "--model", model, "--task", "logits", "--input-ids", DiRunner.Expected, "--output", strictOutput, "--strict");
        Assert.Equal(1, strictExit);
        Assert.Contains("nothing written (--strict)", strictStderr, StringComparison.Ordinal);
        Assert.DoesNotContain("di: warning:", strictStderr, StringComparison.Ordinal);
        Assert.False(File.Exists(strictOutput));
    }

    [Theory]
    [InlineData("--do-sample")]
    [InlineData("--strict")]
    public async Task Generation_from_nan_logits_fails_instead_of_writing_token_ids(string flag)
    {
        var (exit, stdout, stderr) = await DiRunner.Run("infer", "--model", NanModel(), "--task", "generate", "--max-new-tokens", "3", "--input-ids", DiRunner.Expected, flag);
        Assert.Equal(1, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Contains("di: error: job failed: ", stderr, StringComparison.Ordinal);
        Assert.Contains("hold NaN or Inf at step 0 in fp32", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pipelined_generation_from_fp16_overflow_fails_in_one_line()
    {
        var model = Path.Combine(_folder, "overflow");
        Directory.CreateDirectory(model);
        var fixture = Path.Combine(DiRunner.Fixtures, "mistral-tiny", "model");
        foreach (var file in Directory.GetFiles(fixture))
        {
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        }

        var weights = SafeTensorsFile.ReadAll(Path.Combine(fixture, "model.safetensors"));
        weights["model.norm.weight"] = weights["model.norm.weight"].mul(3e4);
        SafeTensorsFile.Write(Path.Combine(model, "model.safetensors"), weights);
        var input = Path.Combine(DiRunner.Fixtures, "mistral-tiny", "expected.safetensors");
        string[] job = ["infer", "--model", model, "--task", "generate", "--max-new-tokens", "3", "--input-ids", input, "--mode", "pipeline", "--devices", "cpu,cpu"];
        var (exit, stdout, stderr) = await DiRunner.Run([.. job, "--dtype", "fp16"]);
        Assert.Equal(1, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Single(stderr.Split('\n'), l => l.StartsWith("di: error: job failed: ", StringComparison.Ordinal) && l.Contains("NaN or Inf", StringComparison.Ordinal));
        (exit, _, stderr) = await DiRunner.Run([.. job, "--dtype", "fp32"]);
        Assert.True(exit == 0, stderr);
    }

    [Fact]
    public async Task Finite_logits_get_no_warning()
    {
        var (exit, _, stderr) = await DiRunner.Run("infer", "--model", DiRunner.TinyLanguageModel, "--task", "logits", "--input-ids", DiRunner.Expected, "--output", Path.Combine(_folder, "ok.safetensors"), "--strict");
        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("warning", stderr, StringComparison.Ordinal);
    }
}
