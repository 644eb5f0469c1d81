using DistributedInference.Host.Serving;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Samples.ChatClient;
using DistributedInference.Samples.ChatService;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenAI.Chat;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>
/// <see cref="IChatClient"/> and <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> in host apps (the samples under
/// samples/ChatClient and samples/ChatService): the whole answer equals the streamed one and the one the official OpenAI
/// client gets from the sample's HTTP server; cancelling a stream ends it; embeddings equal the fixture.
/// </summary>
public sealed class ChatClientTests
{
    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    private static string QwenTemplate => Path.Combine(DiRunner.Fixtures, "chat-templates", "Qwen-Qwen2.5-7B-Instruct", "template.jinja");

    [Fact]
    public async Task IChatClient_answers_as_the_openai_client_gets_it_from_the_served_api()
    {
        LibTorch.Initialize();
        const string question = "What is a zebra?";
        var (whole, streamed) = await ChatClientSample.AskAsync(Model("qwen2-tiny"), QwenTemplate, question);
        Assert.Equal(whole, streamed);
        Assert.NotEmpty(whole);

        using var service = await ChatServiceSample.StartAsync(Model("qwen2-tiny"), QwenTemplate, port: 0);
        var address = service.Services.GetRequiredService<ServingHost>().Address!;
        var openai = ChatClientSample.OpenAIChat(address, Model("qwen2-tiny"));
        ChatCompletion answer = await openai.CompleteChatAsync(
            [new SystemChatMessage("Answer briefly."), new UserChatMessage(question)],
            new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16 });
        Assert.Equal(whole, answer.Content[0].Text);
        await service.StopAsync();
    }

    [Fact]
    public async Task Cancelling_a_stream_ends_it_and_embeddings_match_the_fixture()
    {
        LibTorch.Initialize();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInferenceServing(new ServeOptions(Model("qwen2-tiny"), ChatTemplate: QwenTemplate));
        using var host = builder.Build();
        await host.StartAsync();
        var chat = host.Services.GetRequiredService<IChatClient>();
        using var cancel = new CancellationTokenSource();
        var updates = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in chat.GetStreamingResponseAsync([new AIChatMessage(ChatRole.User, "count")], new ChatOptions { Temperature = 0, MaxOutputTokens = 400 }, cancel.Token))
            {
                updates++;
                await cancel.CancelAsync();
            }
        });
        Assert.Equal(1, updates);
        Assert.Equal("distributed-inference", chat.GetService<ChatClientMetadata>()!.ProviderName);
        await host.StopAsync();

        var embedder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        embedder.Services.AddDistributedInferenceServing(new ServeOptions(Model("minilm-tiny")));
        using var embeddingHost = embedder.Build();
        await embeddingHost.StartAsync();
        var generator = embeddingHost.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var sentences = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(DiRunner.Fixtures, "minilm-tiny", "sentences.json")))!["sentences"]!.AsArray().Select(s => (string)s!).ToList();
        var embeddings = await generator.GenerateAsync(sentences);
        var expected = SafeTensorsFile.Open(Path.Combine(DiRunner.Fixtures, "minilm-tiny", "expected.safetensors")).Read("embeddings");
        for (var r = 0; r < sentences.Count; r++)
        {
            var diff = expected[r].data<float>().ToArray().Zip(embeddings[r].Vector.ToArray(), (a, b) => Math.Abs(a - b)).Max();
            Assert.True(diff <= 1e-4, $"sentence {r}: max |diff| {diff:E3}");
        }

        await embeddingHost.StopAsync();
    }
}
