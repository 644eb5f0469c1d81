using System.Security.Cryptography;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// Paths a job writes are checked before any compute: --json-summary is not --output, neither is a folder, neither is a
/// file the job reads (input ids, prompts file, the model folder's files); each is one line, exit 2, nothing touched.
/// </summary>
public sealed class OutputPathTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-outputs-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private async Task AssertRefused(string expected, string[] args, params string[] untouched)
    {
        var before = untouched.Select(Hash).ToList();
        var (exit, stdout, stderr) = await DiRunner.Run(["infer", .. args]);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("di: error: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("di: done", stderr, StringComparison.Ordinal);
        Assert.Equal(before, untouched.Select(Hash).ToList());
    }

    [Fact]
    public async Task A_json_summary_that_is_also_the_output_is_refused()
    {
        var output = Path.Combine(_folder, "out.jsonl");
        await AssertRefused("is also --output", ["--model", DiRunner.TinyLanguageModel, "--task", "logits", "--input-ids", DiRunner.Expected, "--output", output, "--json-summary", output]);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task A_json_summary_that_is_a_folder_is_refused_before_the_job()
    {
        await AssertRefused("is a folder", ["--model", DiRunner.TinyLanguageModel, "--task", "logits", "--input-ids", DiRunner.Expected, "--json-summary", _folder]);
    }

    [Fact]
    public async Task Outputs_that_name_the_jobs_inputs_are_refused_and_the_inputs_kept()
    {
        var ids = Path.Combine(_folder, "ids.safetensors");
        File.Copy(DiRunner.Expected, ids);
        await AssertRefused("the --input-ids file", ["--model", DiRunner.TinyLanguageModel, "--task", "logits", "--input-ids", ids, "--output", ids], ids);

        var model = Path.Combine(_folder, "model");
        Directory.CreateDirectory(model);
        foreach (var file in Directory.GetFiles(DiRunner.TinyLanguageModel))
        {
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        }

        var weights = Path.Combine(model, "model.safetensors");
        await AssertRefused("a file of the model folder (model.safetensors)", ["--model", model, "--task", "logits", "--input-ids", ids, "--output", weights], weights);

        var prompts = Path.Combine(_folder, "prompts.txt");
        File.WriteAllText(prompts, "a dog\n");
        await AssertRefused("the --prompts-file", ["--model", "gpt2-tiny", "--prompts-file", prompts, "--max-new-tokens", "2", "--json-summary", prompts], prompts);
    }
}
