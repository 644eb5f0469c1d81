using System.Text.Json;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

public sealed class InferCommandTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-infer-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Output(string name) => Path.Combine(_folder, name);

    [Fact]
    public async Task Logits_from_safetensors_match_transformers()
    {
        var output = Output("logits.safetensors");
        var (exit, _, stderr) = await DiRunner.Run("infer", "--model", DiRunner.TinyLanguageModel, "--task", "logits",
            "--input-ids", DiRunner.Expected, "--output", output, "--devices", "cpu", "--max-batch-size", "3");
        Assert.True(exit == 0, stderr);
        var logits = SafeTensorsFile.Open(output).Read("logits");
        Assert.True(DiRunner.MaxAbsDiff(logits, DiRunner.ExpectedTensor("lm_logits")) <= 1e-4);
    }

    [Fact]
    public async Task Classification_from_safetensors_matches_transformers()
    {
        var input = Output("cls-input.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = DiRunner.ExpectedTensor("cls_input_ids") });
        var output = Output("cls.safetensors");
        var (exit, _, stderr) = await DiRunner.Run("infer", "--model", DiRunner.TinyClassifier, "--task", "classify",
            "--input-ids", input, "--output", output);
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("cls_logits")) <= 1e-4);
    }

    [Fact]
    public async Task Greedy_generation_matches_transformers_exactly()
    {
        var input = Output("prompt.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = DiRunner.ExpectedTensor("greedy_prompt") });
        var output = Output("generated.safetensors");
        var (exit, _, stderr) = await DiRunner.Run("infer", "--model", DiRunner.TinyLanguageModel, "--task", "generate",
            "--input-ids", input, "--max-new-tokens", "12", "--output", output);
        Assert.True(exit == 0, stderr);
        Assert.Equal(DiRunner.ExpectedTensor("greedy_output").data<long>().ToArray(), SafeTensorsFile.Open(output).Read("output_ids").data<long>().ToArray());
    }

    [Fact]
    public async Task Prompts_write_one_json_line_per_prompt_in_order()
    {
        var output = Output("out.jsonl");
        string[] prompts = ["a dog", "a cat sat on the mat", "a chicken"];
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", "gpt2-tiny", "--task", "generate", "--max-new-tokens", "4",
            "--max-batch-size", "2", "--output", output, "--prompts", .. prompts]);
        Assert.True(exit == 0, stderr);
        var lines = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(prompts, lines.Select(l => l.GetProperty("prompt").GetString()));
        Assert.Equal([0, 1, 2], lines.Select(l => l.GetProperty("index").GetInt32()));
        Assert.All(lines, l => Assert.Equal(4, l.GetProperty("output_ids").GetArrayLength()));

        // Batched, left-padded generation gives what each prompt gets alone.
        foreach (var (prompt, line) in prompts.Zip(lines))
        {
            var (aloneExit, alone, _) = await DiRunner.Run("infer", "--model", "gpt2-tiny", "--task", "generate", "--max-new-tokens", "4", "--prompts", prompt);
            Assert.Equal(0, aloneExit);
            Assert.Equal(line.GetProperty("output_ids").ToString(), JsonDocument.Parse(alone).RootElement.GetProperty("output_ids").ToString());
        }
    }

    [Fact]
    public async Task Prompts_file_and_logits_jsonl_on_stdout_index_is_line_number_minus_one()
    {
        var prompts = Output("prompts.txt");
        File.WriteAllLines(prompts, ["Hello world", "a", "The quick brown fox"]);
        var (exit, stdout, stderr) = await DiRunner.Run("infer", "--model", "gpt2-tiny", "--task", "logits", "--prompts-file", prompts);
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([0, 1, 2], lines.Select(l => l.GetProperty("index").GetInt32()));
        Assert.Equal(File.ReadAllLines(prompts), lines.Select(l => l.GetProperty("prompt").GetString()));
        Assert.Equal(2, lines[0].GetProperty("tokens").GetInt32());
        Assert.True(lines[1].GetProperty("next_token_id").GetInt64() is >= 0 and < 50257);
    }

    public static TheoryData<string[], string> BadInputs => new()
    {
        { ["--input-ids", "/nonexistent/ids.safetensors"], "no such file" },
        { ["--input-ids", "{corrupt}"], "not a valid safetensors file" },
        { ["--input-ids", "{too-large-id}"], "outside the model's vocabulary" },
        { ["--input-ids", "{too-long}"], "longer than the model's n_positions 128" },
        { ["--input-ids", "{expected}", "--model", "gpt5"], "unknown model 'gpt5'" },
        { ["--input-ids", "{expected}", "--devices", "tpu:0"], "unknown device 'tpu:0'" },
        { ["--input-ids", "{expected}", "--devices", "cuda:0"], "CUDA is not available" },
        { ["--input-ids", "{expected}", "--dtype", "fp8"], "unknown dtype 'fp8'" },
        { ["--input-ids", "{expected}", "--task", "translate"], "unknown task 'translate'" },
        { ["--input-ids", "{expected}", "--task", "classify"], "no classification head" },
        { ["--prompts", "a dog"], "give token ids (--input-ids) instead" },
        { [], "give exactly one of --input-ids, --prompts, --prompts-file" },
        { ["--input-ids", "{expected}", "--devices", "cpu,,cpu"], "devices 'cpu,,cpu': entry 2 is empty" },
        { ["--input-ids", "{expected}", "--devices", "cpu,"], "entry 2 is empty" },
        { ["--input-ids", "{mask-7}"], "attention_mask[0, 1] is 7; use 1 for a real token and 0 for padding" },
        { ["--input-ids", "{expected}", "--max-batch-size", "abc"], "abc" },
        { ["--input-ids", "{expected}", "--no-such-option"], "--no-such-option" },
        { ["--prompts", "a", "b", "--outptu", "x.jsonl"], "--prompts: '--outptu' is not an option of this command" },
        { ["--prompts-file", "{blank-line}"], "line 2 is blank" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Bad_input_exits_non_zero_with_one_line_and_no_output_file(string[] args, string message)
    {
        var corrupt = Output("corrupt.safetensors");
        File.WriteAllBytes(corrupt, [8, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'x']);
        var tooLarge = Output("large.safetensors");
        SafeTensorsFile.Write(tooLarge, new Dictionary<string, Tensor> { ["input_ids"] = tensor(new long[] { 1, 2, 1000 }, [1, 3]) });
        var tooLong = Output("long.safetensors");
        SafeTensorsFile.Write(tooLong, new Dictionary<string, Tensor> { ["input_ids"] = ones(1, 129, ScalarType.Int64) });
        var mask7 = Output("mask7.safetensors");
        SafeTensorsFile.Write(mask7, new Dictionary<string, Tensor> { ["input_ids"] = tensor(new long[] { 1, 2, 3 }, [1, 3]), ["attention_mask"] = tensor(new long[] { 1, 7, 1 }, [1, 3]) });
        var blankLine = Output("blank.txt");
        File.WriteAllLines(blankLine, ["a dog", "", "a cat"]);
        var substituted = args.Select(a => a.Replace("{corrupt}", corrupt).Replace("{too-large-id}", tooLarge)
            .Replace("{too-long}", tooLong).Replace("{mask-7}", mask7).Replace("{blank-line}", blankLine).Replace("{expected}", DiRunner.Expected)).ToArray();
        var output = Output("result.safetensors");

        var defaults = new[] { ("--model", DiRunner.TinyLanguageModel), ("--task", "logits") }
            .Where(d => !substituted.Contains(d.Item1)).SelectMany(d => new[] { d.Item1, d.Item2 });
        var (exit, _, stderr) = await DiRunner.Run(["infer", .. defaults, "--output", output, .. substituted]);

        Assert.Equal(2, exit);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.StartsWith("di: error: ", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }
}
