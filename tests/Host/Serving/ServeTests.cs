using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Templates;
using DistributedInference.Models.Tokenization;
using OpenAI;
using OpenAI.Chat;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>
/// <c>di serve</c> as a real process on 127.0.0.1, talked to with the official OpenAI .NET client: token-id completions
/// at temperature 0 return exactly the ids <c>di infer --task generate</c> gives (one at a time and 16 at once),
/// streamed and whole chat answers are the same text, embeddings match the fixture within 1e-4, /tokenize of messages is
/// the rendered template's ids, and SIGTERM lets an in-flight stream finish before the process exits 0.
/// </summary>
public sealed class ServeTests
{
    private const string ApiKey = "test-key";

    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    private static OpenAIClient Client(ServeProcess serve) =>
        new(new ApiKeyCredential(ApiKey), new OpenAIClientOptions { Endpoint = new Uri(serve.Address, "/v1") });

    /// <summary>POST /v1/completions through the official client's pipeline (it has no legacy-completions method).</summary>
    private static async Task<JsonObject> Complete(OpenAIClient client, Uri server, JsonObject body)
    {
        var message = client.Pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(server, "/v1/completions");
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromString(body.ToJsonString()));
        message.ResponseClassifier = PipelineMessageClassifier.Create([200]);
        await client.Pipeline.SendAsync(message);
        Assert.True(message.Response!.Status == 200, message.Response.Content.ToString());
        return JsonNode.Parse(message.Response.Content.ToString())!.AsObject();
    }

    private static List<long> Ids(JsonNode? array) => array!.AsArray().Select(x => (long)x!).ToList();

    [Theory]
    [InlineData("llama3-tiny")]
    [InlineData("qwen2-tiny")]
    public async Task Token_id_completions_at_temperature_0_equal_di_infer_alone_and_16_at_once(string fixture)
    {
        LibTorch.Initialize();
        var expected = Path.Combine(DiRunner.Fixtures, fixture, "expected.safetensors");
        var output = Path.Combine(Path.GetTempPath(), $"di-serve-infer-{Guid.NewGuid():N}.jsonl");
        List<List<long>> inferIds;
        List<List<long>> prompts;
        try
        {
            var (exit, _, stderr) = await DiRunner.Run("infer", "--model", Model(fixture), "--task", "generate", "--input-ids", expected, "--max-new-tokens", "10", "--output", output, "--quiet");
            Assert.True(exit == 0, stderr);
            inferIds = File.ReadAllLines(output).Select(line => Ids(JsonNode.Parse(line)!["output_ids"])).ToList();
        }
        finally
        {
            File.Delete(output);
        }

        {
            var file = SafeTensorsFile.Open(expected);
            using var ids = file.Read("input_ids");
            using var mask = file.Read("attention_mask");
            prompts = Enumerable.Range(0, (int)ids.shape[0]).Select(r =>
                Enumerable.Range(0, (int)ids.shape[1]).Where(t => mask[r, t].ToInt64() == 1).Select(t => ids[r, t].ToInt64()).ToList()).ToList();
        }

        await using var serve = await ServeProcess.StartAsync("--model", Model(fixture), "--api-key", ApiKey);
        var client = Client(serve);
        JsonObject Request(List<long> prompt) => new()
        {
            ["model"] = Model(fixture),
            ["prompt"] = new JsonArray(prompt.Select(id => (JsonNode?)id).ToArray()),
            ["max_tokens"] = 10,
            ["temperature"] = 0,
            ["return_token_ids"] = true,
        };

        for (var row = 0; row < prompts.Count; row++)
        {
            var answer = await Complete(client, serve.Address, Request(prompts[row]));
            var choice = answer["choices"]![0]!;
            Assert.Equal(inferIds[row], Ids(choice["token_ids"]));
            Assert.Equal(prompts[row], Ids(choice["prompt_token_ids"]));
            Assert.Equal(inferIds[row].Count, (int)answer["usage"]!["completion_tokens"]!);
        }

        var concurrent = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Complete(client, serve.Address, Request(prompts[i % prompts.Count]))));
        for (var i = 0; i < 16; i++)
        {
            Assert.Equal(inferIds[i % prompts.Count], Ids(concurrent[i]["choices"]![0]!["token_ids"]));
        }

        Assert.Equal(0, await serve.TerminateAsync(TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public async Task Chat_streamed_and_whole_are_the_same_text_and_tokenize_is_the_rendered_template()
    {
        var template = Path.Combine(DiRunner.Fixtures, "chat-templates", "Qwen-Qwen2.5-7B-Instruct", "template.jinja");
        await using var serve = await ServeProcess.StartAsync("--model", Model("qwen2-tiny"), "--chat-template", template, "--served-model-name", "qwen-tiny", "--api-key", ApiKey);
        var chat = Client(serve).GetChatClient("qwen-tiny");
        ChatMessage[] messages = [new SystemChatMessage("Be brief."), new UserChatMessage("Name three colours, é and 漢字 included.")];
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 };

        ChatCompletion whole = await chat.CompleteChatAsync(messages, options);
        var streamed = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }

            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal(whole.Content[0].Text, streamed.ToString());
        Assert.Equal(whole.FinishReason, finish);
        Assert.Equal(whole.Usage.OutputTokenCount, usage!.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);

        // /tokenize of the messages equals the tokenizer's ids of the template rendered as transformers renders it.
        using var http = new HttpClient { BaseAddress = serve.Address };
        http.DefaultRequestHeaders.Authorization = new("Bearer", ApiKey);
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "Be brief." }, new JsonObject { ["role"] = "user", ["content"] = "Name three colours, é and 漢字 included." }),
            ["add_generation_prompt"] = true,
        };
        using var response = await http.PostAsync("/tokenize", new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        var tokenized = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var rendered = HuggingFaceChatTemplate.Load(Model("qwen2-tiny"), template).Apply(new ChatTemplateInput(body["messages"]!.AsArray().DeepClone().AsArray()) { AddGenerationPrompt = true });
        using var tokenizer = HuggingFaceTokenizer.Load(Model("qwen2-tiny"));
        Assert.Equal(tokenizer.Encode(rendered, addSpecialTokens: false), Ids(tokenized["tokens"]));
        Assert.Equal(whole.Usage.InputTokenCount, (int)tokenized["count"]!);
    }

    [Fact]
    public async Task Embeddings_equal_the_fixture_within_1e_4_as_floats_and_token_ids()
    {
        LibTorch.Initialize();
        var sentences = JsonNode.Parse(File.ReadAllText(Path.Combine(DiRunner.Fixtures, "minilm-tiny", "sentences.json")))!["sentences"]!.AsArray().Select(s => (string)s!).ToList();
        var file = SafeTensorsFile.Open(Path.Combine(DiRunner.Fixtures, "minilm-tiny", "expected.safetensors"));
        using var expected = file.Read("embeddings");
        using var ids = file.Read("input_ids");
        using var mask = file.Read("attention_mask");
        await using var serve = await ServeProcess.StartAsync("--model", Model("minilm-tiny"), "--api-key", ApiKey);
        var embeddings = Client(serve).GetEmbeddingClient(Model("minilm-tiny"));

        var fromText = (await embeddings.GenerateEmbeddingsAsync(sentences)).Value;
        var tokenRows = Enumerable.Range(0, sentences.Count).Select(r => new ReadOnlyMemory<int>(
            Enumerable.Range(0, (int)ids.shape[1]).Where(t => mask[r, t].ToInt64() == 1).Select(t => (int)ids[r, t].ToInt64()).ToArray())).ToList();
        var fromIds = (await embeddings.GenerateEmbeddingsAsync(tokenRows)).Value;
        for (var r = 0; r < sentences.Count; r++)
        {
            var reference = expected[r].data<float>().ToArray();
            foreach (var vector in new[] { fromText[r].ToFloats().ToArray(), fromIds[r].ToFloats().ToArray() })
            {
                Assert.Equal(reference.Length, vector.Length);
                var diff = reference.Zip(vector, (a, b) => Math.Abs(a - b)).Max();
                Assert.True(diff <= 1e-4, $"sentence {r}: max |diff| {diff:E3}");
            }
        }
    }

    [Fact]
    public async Task Sigterm_lets_an_in_flight_stream_finish_then_exits_0()
    {
        await using var serve = await ServeProcess.StartAsync("--model", Model("llama3-tiny"));
        using var http = new HttpClient { BaseAddress = serve.Address };
        var body = new JsonObject { ["prompt"] = new JsonArray(637, 5, 6, 7), ["max_tokens"] = 64, ["temperature"] = 0, ["ignore_eos"] = true, ["stream"] = true };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var first = await reader.ReadLineAsync();
        Assert.StartsWith("data: {", first);

        var exit = serve.TerminateAsync(TimeSpan.FromMinutes(1));
        var rest = await reader.ReadToEndAsync();
        var events = rest.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.Trim()).ToList();
        Assert.Equal("data: [DONE]", events[^1]);
        var tokens = 1 + events.Count(e => e.StartsWith("data: {", StringComparison.Ordinal) && !e.Contains("\"finish_reason\":\"length\"", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Contains("\"finish_reason\":\"length\"", StringComparison.Ordinal));
        Assert.Equal(0, await exit);
        Assert.Contains("di serve: draining", serve.Stderr);
        Assert.Contains("di serve: stopped", serve.Stderr);
        Assert.True(tokens > 1);
    }
}
