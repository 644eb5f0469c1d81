using System.Text.Json.Nodes;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.Batch;

/// <summary>
/// <c>di batch</c> on the qwen2-tiny fixture: every request of the input answered exactly once (lines that cannot run
/// with an error line), greedy completions equal to <c>di infer --task generate</c>'s tokens for the same ids, a torn
/// output resumed to the uninterrupted answers, duplicate custom_ids refused before anything runs.
/// </summary>
public sealed class BatchCommandTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-batch-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Every_request_is_answered_once_and_greedy_completions_equal_di_infer()
    {
        const int count = 40;
        // di batch's instruments, as an OpenTelemetry exporter would see them (this class runs the in-process batches one at a time).
        var recorded = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == DistributedInference.Actors.Kernel.Telemetry.Instrumentation.Name && instrument.Name.StartsWith("di.batch.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = instrument.Name;
            foreach (var tag in tags)
            {
                key += $" {tag.Key}={tag.Value}";
            }

            recorded.AddOrUpdate(key, value, (_, sum) => sum + value);
        });
        listener.Start();
        var input = Write("in.jsonl", BatchFiles.Mixed(count));
        var output = Path.Combine(_folder, "out", "answers.jsonl");
        var (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--chat-template", BatchFiles.QwenTemplate,
            "--input", input, "--output", output, "--job-rows", "8", "--max-batch-size", "4", "--json-summary", Path.Combine(_folder, "summary.json"));
        Assert.True(exit == 0, stderr);

        var answers = BatchFiles.Answers(output);
        Assert.Equal(count + 6, answers.Count);
        var bodies = answers.Values.Select(a => JsonNode.Parse(a)!["response"]?["body"]).Where(b => b is not null).ToList();
        Assert.Equal(bodies.Count, recorded.GetValueOrDefault("di.batch.requests outcome=completed"));
        Assert.Equal(answers.Count - bodies.Count, recorded.GetValueOrDefault("di.batch.requests outcome=failed"));
        Assert.Equal(bodies.Sum(b => b!["usage"]!["prompt_tokens"]!.GetValue<long>()), recorded.GetValueOrDefault("di.batch.tokens gen_ai.token.type=input"));
        Assert.Equal(bodies.Sum(b => b!["usage"]!["completion_tokens"]!.GetValue<long>()), recorded.GetValueOrDefault("di.batch.tokens gen_ai.token.type=output"));
        Assert.Equal("invalid_json", BatchFiles.Error(answers["line 4"]).GetProperty("code").GetString());
        Assert.Equal("invalid_json", BatchFiles.Error(answers["line 8"]).GetProperty("code").GetString());
        Assert.Equal("missing_custom_id", BatchFiles.Error(answers["line 12"]).GetProperty("code").GetString());
        Assert.Equal("invalid_url", BatchFiles.Error(answers["badurl"]).GetProperty("code").GetString());
        Assert.Equal("max_tokens", BatchFiles.Error(answers["badbody"]).GetProperty("param").GetString());
        Assert.Equal("context_length_exceeded", BatchFiles.Error(answers["long"]).GetProperty("code").GetString());
        Assert.Contains("does not support Embeddings API", BatchFiles.Error(answers["embed4"]).GetProperty("message").GetString(), StringComparison.Ordinal);
        var chat = JsonNode.Parse(answers["chat3"])!["response"]!["body"]!;
        Assert.Equal("chat.completion", chat["object"]!.GetValue<string>());
        var sample = JsonNode.Parse(answers["sample2"])!["response"]!["body"]!["choices"]!.AsArray();
        Assert.Equal(2, sample.Count);
        Assert.All(sample, c => Assert.DoesNotContain("e", c!["text"]!.GetValue<string>(), StringComparison.Ordinal));

        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(_folder, "summary.json")))!;
        Assert.Equal(count + 6, summary["ok"]!.GetValue<long>() + summary["failed"]!.GetValue<long>());
        Assert.Equal(8 + 6, summary["failed"]!.GetValue<long>());

        // The same prompts through di infer, left-padded in one tensor: the same greedy tokens.
        var rows = Enumerable.Range(0, count).Where(i => i % 5 == 0).ToList();
        var prompts = rows.Select(BatchFiles.IdsPrompt).ToList();
        var width = prompts.Max(p => p.Count);
        var ids = new long[rows.Count * width];
        var mask = new long[rows.Count * width];
        for (var r = 0; r < rows.Count; r++)
        {
            for (var t = 0; t < width; t++)
            {
                var real = t - (width - prompts[r].Count);
                ids[(r * width) + t] = real >= 0 ? prompts[r][real] : 637;
                mask[(r * width) + t] = real >= 0 ? 1 : 0;
            }
        }

        var idsFile = Path.Combine(_folder, "ids.safetensors");
        SafeTensorsFile.Write(idsFile, new Dictionary<string, Tensor> { ["input_ids"] = tensor(ids, [rows.Count, width]), ["attention_mask"] = tensor(mask, [rows.Count, width]) });
        var (inferExit, stdout, inferErr) = await DiRunner.Run("infer", "--model", BatchFiles.Qwen2, "--task", "generate", "--input-ids", idsFile,
            "--max-new-tokens", BatchFiles.IdsMaxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture), "--quiet");
        Assert.True(inferExit == 0, inferErr);
        var inferred = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!["output_ids"]!.AsArray().Select(n => n!.GetValue<long>()).ToList()).ToList();
        for (var r = 0; r < rows.Count; r++)
        {
            var batched = BatchFiles.TokenIds(answers[$"ids{rows[r]}"]);
            Assert.Equal(inferred[r].Take(batched.Count), batched);
        }
    }

    [Fact]
    public async Task A_torn_output_is_resumed_to_the_uninterrupted_answers_in_input_order()
    {
        var input = Write("in.jsonl", BatchFiles.Mixed(20));
        var whole = Path.Combine(_folder, "whole.jsonl");
        var (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--chat-template", BatchFiles.QwenTemplate, "--input", input, "--output", whole, "--ordered", "--quiet");
        Assert.True(exit == 0, stderr);
        var expected = BatchFiles.Answers(whole);
        var order = File.ReadLines(whole).Select(l => JsonNode.Parse(l)!["custom_id"]?.GetValue<string>()).ToList();
        var inputOrder = File.ReadLines(input).Select(CustomId).ToList();
        Assert.Equal(inputOrder.Where(id => id is not null), order.Where(id => id is not null));

        // 9 lines answered, the 10th torn mid-line, as a process killed while writing it would leave them.
        var resumed = Path.Combine(_folder, "resumed.jsonl");
        var kept = File.ReadLines(whole).Skip(4).Take(9).ToList();
        var torn = File.ReadLines(whole).Skip(13).First();
        File.WriteAllText(resumed, string.Join('\n', kept) + "\n" + torn[..(torn.Length / 2)]);
        (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--chat-template", BatchFiles.QwenTemplate, "--input", input, "--output", resumed);
        Assert.True(exit == 0, stderr);
        Assert.Contains("9 answer(s) in it, 17 of 26 request(s) left; a torn last line", stderr, StringComparison.Ordinal);
        Assert.Equal(expected.OrderBy(a => a.Key), BatchFiles.Answers(resumed).OrderBy(a => a.Key));

        // Nothing left to do: a third run answers nothing and changes nothing.
        var before = File.ReadAllText(resumed);
        (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--input", input, "--output", resumed);
        Assert.True(exit == 0, stderr);
        Assert.Equal(before, File.ReadAllText(resumed));
    }

    [Fact]
    public async Task Duplicate_custom_ids_and_another_batchs_output_are_refused_before_anything_runs()
    {
        var line = BatchFiles.Line("same", "/v1/completions", new JsonObject { ["prompt"] = "a" });
        var input = Write("dup.jsonl", [line, BatchFiles.Line("other", "/v1/completions", new JsonObject { ["prompt"] = "b" }), line]);
        var output = Path.Combine(_folder, "out.jsonl");
        var (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--input", input, "--output", output);
        Assert.Equal(2, exit);
        Assert.Contains("custom_id 'same' is on line 1 and on line 3", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));

        var unrelated = Write("unrelated.jsonl", ["""{"id": "batch_req_1", "custom_id": "elsewhere", "response": null, "error": {"code": "x", "message": "y"}}"""]);
        var good = Write("good.jsonl", [line]);
        (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--input", good, "--output", unrelated);
        Assert.Equal(2, exit);
        Assert.Contains("answers custom_id 'elsewhere', which is not in --input", stderr, StringComparison.Ordinal);
        Assert.Single(File.ReadLines(unrelated));

        var notes = Write("notes.txt", ["my notes"]);
        (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--input", good, "--output", notes);
        Assert.Equal(2, exit);
        Assert.Contains("line 1 is not a batch output line", stderr, StringComparison.Ordinal);
        Assert.Equal("my notes\n", File.ReadAllText(notes));

        (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--input", good, "--output", unrelated, "--restart", "--quiet");
        Assert.True(exit == 0, stderr);
        Assert.Equal(["same"], BatchFiles.Answers(unrelated).Keys);
    }

    [Fact]
    public async Task Ordered_answers_held_behind_a_request_never_starve_the_reader_of_places()
    {
        // One request, then many lines answered at once with errors: in input order they all wait for the request,
        // which must be dispatched before the reader runs out of places (three windows of 2 here).
        var lines = new List<string> { BatchFiles.Line("first", "/v1/completions", new JsonObject { ["prompt"] = "a", ["max_tokens"] = 2 }) };
        lines.AddRange(Enumerable.Range(0, 50).Select(i => BatchFiles.Line($"e{i}", "/v1/embeddings", new JsonObject { ["input"] = "x" })));
        var input = Write("held.jsonl", lines);
        var output = Path.Combine(_folder, "held.out.jsonl");
        var (exit, _, stderr) = await DiRunner.Run("batch", "--model", BatchFiles.Qwen2, "--input", input, "--output", output, "--ordered", "--window", "2", "--quiet");
        Assert.True(exit == 0, stderr);
        Assert.Equal(["first", .. Enumerable.Range(0, 50).Select(i => $"e{i}")], File.ReadLines(output).Select(CustomId));
    }

    [Fact]
    public async Task Image_requests_write_the_images_di_infer_draws_for_the_same_prompt_and_seed()
    {
        var model = Path.Combine(DiRunner.Fixtures, "sd-tiny", "model");
        var input = Write("images.jsonl", [
            BatchFiles.Line("a cat/1", "/v1/images/generations", new JsonObject { ["prompt"] = "a cat", ["n"] = 2, ["seed"] = 5, ["num_inference_steps"] = 3 }),
            BatchFiles.Line("inline", "/v1/images/generations", new JsonObject { ["prompt"] = "a dog", ["seed"] = 6, ["num_inference_steps"] = 2, ["response_format"] = "b64_json" }),
            BatchFiles.Line("odd", "/v1/images/generations", new JsonObject { ["prompt"] = "a cat", ["size"] = "33x9" }),
            BatchFiles.Line("text", "/v1/completions", new JsonObject { ["prompt"] = "a cat" }),
        ]);
        var output = Path.Combine(_folder, "images.out.jsonl");
        var (exit, _, stderr) = await DiRunner.Run("batch", "--model", model, "--input", input, "--output", output, "--quiet");
        Assert.True(exit == 0, stderr);
        var reference = Path.Combine(_folder, "reference");
        (exit, _, stderr) = await DiRunner.Run("infer", "--model", model, "--task", "text-to-image", "--prompts", "a cat", "a cat", "--seed", "5",
            "--num-inference-steps", "3", "--output-dir", reference, "--quiet");
        Assert.True(exit == 0, stderr);

        var answers = BatchFiles.Answers(output);
        var urls = JsonNode.Parse(answers["a cat/1"])!["response"]!["body"]!["data"]!.AsArray().Select(d => new Uri(d!["url"]!.GetValue<string>()).LocalPath).ToList();
        Assert.Equal(2, urls.Count);
        Assert.All(urls, path => Assert.Equal(Path.Combine(_folder, "images.out.jsonl.images"), Path.GetDirectoryName(path)));
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "image_0.png")), File.ReadAllBytes(urls[0]));
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "image_1.png")), File.ReadAllBytes(urls[1]));
        // Its own options, so its own forward pass: a PNG of the pipeline's size.
        var inline = Convert.FromBase64String(JsonNode.Parse(answers["inline"])!["response"]!["body"]!["data"]![0]!["b64_json"]!.GetValue<string>());
        using var decoded = Models.Diffusion.PngImage.Load(WriteTemp(inline));
        Assert.Equal([32L, 32, 3], decoded.shape);
        Assert.Equal("size", BatchFiles.Error(answers["odd"]).GetProperty("param").GetString());
        Assert.Contains("does not support Completions API", BatchFiles.Error(answers["text"]).GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    private string WriteTemp(byte[] bytes)
    {
        var path = Path.Combine(_folder, $"{Guid.NewGuid():N}.png");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string? CustomId(string line)
    {
        try
        {
            return JsonNode.Parse(line) is JsonObject o ? o["custom_id"]?.GetValue<string>() : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private string Write(string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllLines(path, lines);
        return path;
    }
}
