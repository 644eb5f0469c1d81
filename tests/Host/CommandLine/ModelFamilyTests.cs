using System.Text.Json;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// The Llama-family and BERT reference fixtures through the real command line: one device, three replica devices and a
/// three-stage pipeline (and three launched processes) give transformers' logits, greedy tokens and sentence embeddings.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ModelFamilyTests : IDisposable
{
    private static readonly string[][] Placements =
    [
        ["--mode", "replica", "--devices", "cpu"],
        ["--mode", "replica", "--devices", "cpu,cpu,cpu", "--max-batch-size", "1"],
        ["--mode", "pipeline", "--devices", "cpu,cpu,cpu", "--num-chunks", "2"],
    ];

    private readonly string _folder = Directory.CreateTempSubdirectory("di-families-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    private static Tensor Expected(string fixture, string name) =>
        SafeTensorsFile.Open(Path.Combine(DiRunner.Fixtures, fixture, "expected.safetensors")).Read(name);

    public static TheoryData<string, int> Decoders() => new()
    {
        { "llama3-tiny", 0 }, { "llama3-tiny", 1 }, { "llama3-tiny", 2 },
        { "qwen2-tiny", 0 }, { "qwen2-tiny", 1 }, { "qwen2-tiny", 2 },
        { "qwen3-tiny", 0 }, { "qwen3-tiny", 1 }, { "qwen3-tiny", 2 },
        { "mistral-tiny", 0 }, { "mistral-tiny", 1 }, { "mistral-tiny", 2 },
    };

    [Theory]
    [MemberData(nameof(Decoders))]
    public async Task Decoder_logits_match_the_fixture_at_real_positions(string fixture, int placement)
    {
        var output = Path.Combine(_folder, "logits.safetensors");
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Model(fixture), "--task", "logits",
            "--input-ids", Path.Combine(DiRunner.Fixtures, fixture, "expected.safetensors"), "--output", output, .. Placements[placement]]);
        Assert.True(exit == 0, stderr);
        AssertCloseAtRealPositions(fixture, SafeTensorsFile.Open(output).Read("logits"));
    }

    [Theory]
    [InlineData("llama3-tiny", 0)]
    [InlineData("llama3-tiny", 1)]
    [InlineData("qwen2-tiny", 1)]
    [InlineData("qwen3-tiny", 0)]
    [InlineData("mistral-tiny", 1)]
    public async Task Greedy_generation_matches_the_fixture(string fixture, int placement)
    {
        var input = Path.Combine(_folder, "prompts.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor>
        {
            ["input_ids"] = Expected(fixture, "greedy_input_ids"),
            ["attention_mask"] = Expected(fixture, "greedy_attention_mask"),
        });
        var output = Path.Combine(_folder, "generated.safetensors");
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Model(fixture), "--task", "generate", "--max-new-tokens", "10",
            "--input-ids", input, "--output", output, .. Placements[placement]]);
        Assert.True(exit == 0, stderr);
        var expected = Expected(fixture, "greedy_output");
        Assert.Equal(expected.data<long>().ToArray(), SafeTensorsFile.Open(output).Read("output_ids").data<long>().ToArray());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Sentence_embeddings_match_sentence_transformers(int placement)
    {
        var sentences = Sentences();
        var output = Path.Combine(_folder, "embeddings.safetensors");
        var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Model("minilm-tiny"), "--task", "embed",
            "--prompts", .. sentences, "--output", output, .. Placements[placement]]);
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("embeddings"), Expected("minilm-tiny", "embeddings")) <= 1e-4);
    }

    [Fact]
    public async Task Embeddings_as_json_lines_carry_index_and_embedding()
    {
        var (exit, stdout, stderr) = await DiRunner.Run(["infer", "--model", Model("minilm-tiny"), "--task", "embed", "--prompts", .. Sentences()]);
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var expected = Expected("minilm-tiny", "embeddings");
        Assert.Equal(Sentences().Length, lines.Count);
        for (var i = 0; i < lines.Count; i++)
        {
            Assert.Equal(i, lines[i].GetProperty("index").GetInt32());
            var embedding = lines[i].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            Assert.True(DiRunner.MaxAbsDiff(tensor(embedding), expected[i]) <= 1e-4);
        }
    }

    [Theory]
    [InlineData("llama3-tiny")]
    [InlineData("qwen2-tiny")]
    [InlineData("qwen3-tiny")]
    public async Task Tokenize_gives_the_ids_of_hugging_face_tokenizers(string fixture)
    {
        using var cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(DiRunner.Fixtures, fixture, "prompts.json")));
        var texts = cases.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToList();
        var (exit, stdout, stderr) = await DiRunner.Run(["tokenize", "--model", Model(fixture), "--prompts", .. texts]);
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(texts.Count, lines.Count);
        foreach (var (text, line) in texts.Zip(lines))
        {
            var expected = cases.RootElement.GetProperty("cases").EnumerateArray().First(c => c.GetProperty("text").GetString() == text).GetProperty("ids");
            Assert.Equal(expected.EnumerateArray().Select(e => e.GetInt64()), line.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()));
        }
    }

    [Fact]
    public async Task Prompts_generate_with_the_folders_tokenizer_and_decode_the_completion()
    {
        var (exit, stdout, stderr) = await DiRunner.Run("infer", "--model", Model("qwen2-tiny"), "--task", "generate", "--prompts", "a zebra met a quokka", "hello", "--max-new-tokens", "4");
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, lines.Count);
        Assert.All(lines, line => Assert.Equal(4, line.GetProperty("output_ids").GetArrayLength()));
        Assert.All(lines, line => Assert.Equal(JsonValueKind.String, line.GetProperty("completion").ValueKind));
        Assert.DoesNotContain("random weights", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Three_launched_processes_reproduce_llama_logits_and_minilm_embeddings()
    {
        var logits = Path.Combine(_folder, "logits.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(4), "launch", "--num-processes", "3", "--", "infer", "--mode", "pipeline", "--devices", "cpu",
            "--task", "logits", "--model", Model("llama3-tiny"), "--input-ids", Path.Combine(DiRunner.Fixtures, "llama3-tiny", "expected.safetensors"), "--output", logits);
        Assert.True(exit == 0, stderr);
        Assert.Contains("pipeline plan over 3 node(s)", stderr, StringComparison.Ordinal);
        AssertCloseAtRealPositions("llama3-tiny", SafeTensorsFile.Open(logits).Read("logits"));

        var embeddings = Path.Combine(_folder, "embeddings.safetensors");
        (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(4), ["launch", "--num-processes", "3", "--", "infer", "--mode", "replica", "--devices", "cpu",
            "--task", "embed", "--model", Model("minilm-tiny"), "--prompts", .. Sentences(), "--output", embeddings, "--max-batch-size", "2"]);
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(embeddings).Read("embeddings"), Expected("minilm-tiny", "embeddings")) <= 1e-4);
    }

    [Fact]
    public async Task Sampling_is_reproducible_from_its_seed_whatever_the_devices()
    {
        var input = Path.Combine(DiRunner.Fixtures, "llama3-tiny", "expected.safetensors");
        async Task<long[]> Sample(string devices, string seed, params string[] extra)
        {
            var output = Path.Combine(_folder, $"sampled-{Guid.NewGuid():N}.safetensors");
            var (exit, _, stderr) = await DiRunner.Run(["infer", "--model", Model("llama3-tiny"), "--task", "generate", "--max-new-tokens", "8",
                "--input-ids", input, "--output", output, "--devices", devices, "--max-batch-size", "1", "--seed", seed, .. extra]);
            Assert.True(exit == 0, stderr);
            return SafeTensorsFile.Open(output).Read("output_ids").data<long>().ToArray();
        }

        var once = await Sample("cpu", "7", "--do-sample", "--temperature", "1.5");
        Assert.Equal(once, await Sample("cpu,cpu,cpu", "7", "--do-sample", "--temperature", "1.5"));
        Assert.NotEqual(once, await Sample("cpu", "8", "--do-sample", "--temperature", "1.5"));
        Assert.Equal(await Sample("cpu", "0"), await Sample("cpu,cpu", "9", "--do-sample", "--top-k", "1"));
    }

    [Theory]
    [InlineData(new[] { "--do-sample", "--temperature", "0" }, "temperature must be a positive number")]
    [InlineData(new[] { "--do-sample", "--top-p", "1.5" }, "top_p must be in (0, 1]")]
    [InlineData(new[] { "--do-sample", "--top-k", "-1" }, "top_k must be >= 0")]
    public async Task Impossible_sampling_options_are_one_line_errors(string[] options, string message)
    {
        var (exit, stdout, stderr) = await DiRunner.Run(["infer", "--model", Model("qwen2-tiny"), "--prompts", "hello", .. options]);
        Assert.Equal(2, exit);
        Assert.Empty(stdout);
        Assert.Contains(message, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BrokenFolders() => new()
    {
        { "model_type gpt5", "model_type 'gpt5' is not supported" },
        { "rope_type yarn", "rope_type 'yarn' is not supported" },
        { "shard missing", "model-00002-of-00002.safetensors" },
        { "tensor missing", "model.norm.weight" },
        { "tensor of the wrong shape", "model.norm.weight" },
        { "tokenizer.json that does not parse", "tokenizer.json" },
        { "a layer fewer in config.json than in the weights, in pipeline mode", "unexpected tensor model.layers.2." },
        { "rope_parameters per layer type", "rope_parameters.full_attention: RoPE parameters per layer type are not supported" },
    };

    [Theory]
    [MemberData(nameof(BrokenFolders))]
    public async Task A_broken_model_folder_is_one_line_and_exit_2(string broken, string message)
    {
        var folder = Path.Combine(_folder, "model");
        var fixture = broken is "tensor missing" or "tensor of the wrong shape" ? "qwen2-tiny" : "llama3-tiny";
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(Model(fixture)))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }

        var config = Path.Combine(folder, "config.json");
        switch (broken)
        {
            case "model_type gpt5":
                File.WriteAllText(config, File.ReadAllText(config).Replace("\"llama\"", "\"gpt5\"", StringComparison.Ordinal));
                break;
            case "rope_type yarn":
                File.WriteAllText(config, File.ReadAllText(config).Replace("\"llama3\"", "\"yarn\"", StringComparison.Ordinal));
                break;
            case "shard missing":
                File.Delete(Path.Combine(folder, "model-00002-of-00002.safetensors"));
                break;
            case "tensor missing" or "tensor of the wrong shape":
                var weights = Path.Combine(folder, "model.safetensors");
                var tensors = SafeTensorsFile.ReadAll(weights);
                if (broken == "tensor missing")
                {
                    tensors.Remove("model.norm.weight");
                }
                else
                {
                    tensors["model.norm.weight"] = ones(3);
                }

                SafeTensorsFile.Write(weights, tensors);
                break;
            case "a layer fewer in config.json than in the weights, in pipeline mode":
                File.WriteAllText(config, File.ReadAllText(config).Replace("\"num_hidden_layers\": 3", "\"num_hidden_layers\": 2", StringComparison.Ordinal));
                break;
            case "rope_parameters per layer type":
                var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))!.AsObject();
                json.Remove("rope_scaling");
                json["rope_parameters"] = new System.Text.Json.Nodes.JsonObject { ["full_attention"] = new System.Text.Json.Nodes.JsonObject { ["rope_type"] = "default", ["rope_theta"] = 1e6 } };
                File.WriteAllText(config, json.ToJsonString());
                break;
            default:
                File.WriteAllText(Path.Combine(folder, "tokenizer.json"), "{ not json");
                break;
        }

        string[] mode = broken.EndsWith("pipeline mode", StringComparison.Ordinal) ? ["--mode", "pipeline", "--devices", "cpu,cpu", "--task", "logits"] : ["--task", "generate"];
        var (exit, stdout, stderr) = await DiRunner.Run(["infer", "--model", folder, .. mode, "--prompts", "hello", "--max-new-tokens", "2"]);
        Assert.Equal(2, exit);
        Assert.Empty(stdout);
        Assert.Contains(message, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fp16")]
    [InlineData("bf16")]
    public async Task Pipeline_results_in_half_precision_are_written_as_float32_json_lines(string dtype)
    {
        var (exit, stdout, stderr) = await DiRunner.Run(["infer", "--model", Model("minilm-tiny"), "--task", "embed", "--dtype", dtype,
            "--mode", "pipeline", "--devices", "cpu,cpu", "--prompts", .. Sentences()]);
        Assert.True(exit == 0, stderr);
        var first = JsonDocument.Parse(stdout.Split('\n')[0]).RootElement.GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        Assert.True(DiRunner.MaxAbsDiff(tensor(first), Expected("minilm-tiny", "embeddings")[0]) <= 2e-2);
    }

    [Fact]
    public async Task A_row_without_any_real_token_is_refused()
    {
        var input = Path.Combine(_folder, "empty-row.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor>
        {
            ["input_ids"] = tensor(new long[] { 5, 6, 7, 8 }, [2, 2]),
            ["attention_mask"] = tensor(new long[] { 1, 1, 0, 0 }, [2, 2]),
        });
        var (exit, _, stderr) = await DiRunner.Run("infer", "--model", Model("qwen2-tiny"), "--task", "generate", "--input-ids", input);
        Assert.Equal(2, exit);
        Assert.Contains("attention_mask row 1 has no real token (all 0)", stderr, StringComparison.Ordinal);
    }

    private static string[] Sentences()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(DiRunner.Fixtures, "minilm-tiny", "sentences.json")));
        return json.RootElement.GetProperty("sentences").EnumerateArray().Select(s => s.GetString()!).ToArray();
    }

    private static void AssertCloseAtRealPositions(string fixture, Tensor logits)
    {
        var expected = Expected(fixture, "logits");
        Assert.Equal(expected.shape, logits.shape);
        var real = Expected(fixture, "attention_mask").to(ScalarType.Bool);
        var diff = (logits - expected).abs().amax([-1]).masked_select(real).max().ToDouble();
        Assert.True(diff <= 1e-4, $"max |diff| {diff:E3} at real positions");
    }
}
