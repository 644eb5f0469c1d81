using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using DistributedInference.Host.Inference;
using DistributedInference.Host.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>
/// <c>di serve --mode pipeline</c>: the decoder cut into two stages on this process's devices, served by continuous
/// batching over the stages; concurrent greedy completions equal those of the whole model on one device, and a model
/// whose stages cannot generate is refused in one line.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class PipelineServeTests
{
    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    private static async Task<List<long>> Complete(Uri server, string prompt, int maxTokens)
    {
        using var http = new HttpClient { BaseAddress = server };
        var body = $$"""{"prompt": {{prompt}}, "max_tokens": {{maxTokens}}, "temperature": 0, "return_token_ids": true}""";
        using var response = await http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!["choices"]![0]!["token_ids"]!.AsArray().Select(x => (long)x!).ToList();
    }

    private static async Task<List<long>[]> CompleteAll(ServeOptions options, IReadOnlyList<string> prompts, Action<ServingBackend>? check = null)
    {
        var model = ServedModel.Load(options.Model, null, null, 0);
        await using var backend = await ServingBackend.StartAsync(model, options, CancellationToken.None);
        await using var server = await OpenAIServer.StartAsync(new ServingContext(model, backend, options));
        check?.Invoke(backend);
        return await Task.WhenAll(prompts.Select((p, i) => Complete(server.Address, p, 3 + (i % 5))));
    }

    [Fact]
    public async Task Concurrent_greedy_completions_through_two_stages_equal_one_device()
    {
        LibTorch.Initialize();
        var prompts = Enumerable.Range(0, 8).Select(i => $"[{string.Join(", ", Enumerable.Range(0, 2 + i).Select(t => 5 + (((i + 1) * 37 * (t + 3)) % 200)))}]").ToList();
        var local = await CompleteAll(new ServeOptions(Model("llama3-tiny"), Port: 0), prompts);
        var piped = await CompleteAll(
            new ServeOptions(Model("llama3-tiny"), Devices: "cpu,cpu", Port: 0, Mode: Mode.Pipeline),
            prompts,
            backend => Assert.StartsWith("2 pipeline stage(s) here", backend.Describe(), StringComparison.Ordinal));

        for (var i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(local[i], piped[i]);
        }
    }

    [Fact]
    public async Task A_decoder_whose_stages_cannot_generate_is_refused_in_one_line()
    {
        LibTorch.Initialize();
        var options = new ServeOptions(Path.Combine(DiRunner.Fixtures, "gpt2-tiny", "lm"), Devices: "cpu,cpu", Port: 0, Mode: Mode.Pipeline);
        var model = ServedModel.Load(options.Model, null, null, 0);
        var e = await Assert.ThrowsAsync<InvalidInputException>(() => ServingBackend.StartAsync(model, options, CancellationToken.None));
        Assert.Contains("pipeline", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Pipeline_options_are_refused_without_pipeline_mode_and_a_bad_engine_count_names_its_flag()
    {
        LibTorch.Initialize();
        var model = ServedModel.Load(Model("llama3-tiny"), null, null, 0);
        foreach (var options in new[]
        {
            new ServeOptions(Model("llama3-tiny"), Devices: "cpu,cpu", Port: 0, NumChunks: 2),
            new ServeOptions(Model("llama3-tiny"), Devices: "cpu,cpu", Port: 0, SplitPoints: "model.layers.1"),
        })
        {
            var e = await Assert.ThrowsAsync<InvalidInputException>(() => ServingBackend.StartAsync(model, options, CancellationToken.None));
            Assert.Contains("--mode pipeline", e.Message, StringComparison.Ordinal);
        }

        var zero = new ServeOptions(Model("llama3-tiny"), Devices: "cpu,cpu", Port: 0, Mode: Mode.Pipeline, NumChunks: 0);
        var error = await Assert.ThrowsAsync<InvalidInputException>(() => ServingBackend.StartAsync(model, zero, CancellationToken.None));
        Assert.Contains("--num-chunks", error.Message, StringComparison.Ordinal);
    }
}
