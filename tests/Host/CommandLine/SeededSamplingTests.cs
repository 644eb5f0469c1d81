using System.Text.Json;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// Seeded sampling is keyed by each row's own seed (vLLM's per-request seed; public case vllm#17524): --seed mixed with
/// the row's tokens, or the input file's <c>seed</c> tensor; a row samples the same alone, at any place in any job, on any
/// number of devices, replica or pipeline.
/// </summary>
public sealed class SeededSamplingTests : IDisposable
{
    private static readonly string Qwen3 = Path.Combine(DiRunner.Fixtures, "qwen3-tiny", "model");
    private static readonly string[] Sampling = ["--task", "generate", "--do-sample", "--temperature", "1.5", "--top-k", "0", "--seed", "7", "--max-new-tokens", "8"];

    private readonly string _folder = Directory.CreateTempSubdirectory("di-seeds-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static async Task<List<long[]>> Generate(params string[] args)
    {
        var (exit, stdout, stderr) = await DiRunner.Run(["infer", "--model", Qwen3, .. Sampling, .. args]);
        Assert.True(exit == 0, stderr);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray())
            .ToList();
    }

    [Fact]
    public async Task A_prompt_samples_the_same_alone_and_at_any_place_in_a_job_on_any_devices()
    {
        var alone = (await Generate("--prompts", "a zebra met a quokka"))[0];
        var third = await Generate("--prompts", "hello", "one two three four", "a zebra met a quokka");
        var first = await Generate("--prompts", "a zebra met a quokka", "hello", "--devices", "cpu,cpu", "--max-batch-size", "1");
        var pipelined = await Generate("--prompts", "hello", "a zebra met a quokka", "--mode", "pipeline", "--devices", "cpu,cpu");
        Assert.Equal(alone, third[2]);
        Assert.Equal(alone, first[0]);
        Assert.Equal(alone, pipelined[1]);
        Assert.Equal(third[0], first[1]);
    }

    [Fact]
    public async Task An_input_files_seed_tensor_is_each_rows_own_seed()
    {
        var ids = Path.Combine(_folder, "copies.safetensors");
        using var prompt = tensor(new long[] { 72, 101, 108, 108, 111 }, [1, 5]);
        SafeTensorsFile.Write(ids, new Dictionary<string, Tensor> { ["input_ids"] = prompt.expand(3, -1).contiguous(), ["seed"] = tensor(new long[] { 11, 12, 11 }) });
        var single = Path.Combine(_folder, "single.safetensors");
        SafeTensorsFile.Write(single, new Dictionary<string, Tensor> { ["input_ids"] = prompt, ["seed"] = tensor(new long[] { 12 }) });
        var copies = await Generate("--input-ids", ids, "--devices", "cpu,cpu", "--max-batch-size", "1");
        var alone = (await Generate("--input-ids", single))[0];
        Assert.NotEqual(copies[0], copies[1]);
        Assert.Equal(copies[0], copies[2]);
        Assert.Equal(alone, copies[1]);

        SafeTensorsFile.Write(single, new Dictionary<string, Tensor> { ["input_ids"] = prompt, ["seed"] = tensor(new long[] { 1, 2 }) });
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Qwen3, .. Sampling, "--input-ids", single]);
        Assert.Equal(2, exit);
        Assert.Contains("seed must be int64 [1]", stderr, StringComparison.Ordinal);
    }
}
