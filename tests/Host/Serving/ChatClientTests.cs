using DistributedInference.Host.Serving;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
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
[Collection(ProcessTests.Collection)]
public sealed class ChatClientTests
{
    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    private static string QwenTemplate => Path.Combine(DiRunner.Fixtures, "chat-templates", "Qwen-Qwen2.5-7B-Instruct", "template.jinja");

    [Fact]
    public async Task IChatClient_answers_as_the_openai_client_gets_it_from_the_served_api()
    {
        // The ChatClient sample, as a user runs it: the whole answer, then the streamed one.
        const string question = "What is a zebra?";
        var (exit, stdout, stderr) = await RunSample(TimeSpan.FromMinutes(3), "ChatClient", Model("qwen2-tiny"), QwenTemplate, question);
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(lines[0], lines[1]);

        // The ChatService sample serves the same model; the official OpenAI client gets the same answer from it.
        using var service = StartSample("ChatService", Model("qwen2-tiny"), QwenTemplate, "0");
        try
        {
            var listening = await ReadUntil(service.StandardError, "ChatService: listening on ").WaitAsync(TimeSpan.FromMinutes(3));
            _ = service.StandardError.ReadToEndAsync();
            _ = service.StandardOutput.ReadToEndAsync();
            var address = new Uri(listening);
            var openai = new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential("none"), new OpenAI.OpenAIClientOptions { Endpoint = new Uri(address, "/v1") }).GetChatClient(Model("qwen2-tiny"));
            ChatCompletion answer = await openai.CompleteChatAsync(
                [new SystemChatMessage("Answer briefly."), new UserChatMessage(question)],
                new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16 });
            Assert.Equal(lines[0], answer.Content[0].Text);
        }
        finally
        {
            service.Kill(entireProcessTree: true);
        }
    }

    private static System.Diagnostics.Process StartSample(string name, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(DiRunner.ProgramDll("samples/" + name));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return System.Diagnostics.Process.Start(start)!;
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunSample(TimeSpan bound, string name, params string[] args)
    {
        using var process = StartSample(name, args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(bound);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    // The rest of the first line that starts with `prefix`.
    private static async Task<string> ReadUntil(StreamReader reader, string prefix)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            var at = line.IndexOf(prefix, StringComparison.Ordinal);
            if (at >= 0)
            {
                return line[(at + prefix.Length)..].Trim();
            }
        }

        throw new InvalidOperationException($"the sample ended without printing '{prefix}'");
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
