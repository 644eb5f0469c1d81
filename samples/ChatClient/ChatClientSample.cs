using System.ClientModel;
using System.Text;
using DistributedInference.Host.Serving;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenAI;

namespace DistributedInference.Samples.ChatClient;

/// <summary>A host app that consumes a model through <see cref="IChatClient"/>, and the official OpenAI client pointed at <c>di serve</c>.</summary>
public static class ChatClientSample
{
    /// <summary>Asks <paramref name="question"/> twice (greedy, 16 tokens at most): the whole answer, then streamed.</summary>
    /// <param name="model">A decoder's Hugging Face folder.</param>
    /// <param name="chatTemplate">A chat template file when the folder has none; null: the folder's.</param>
    public static async Task<(string Whole, string Streamed)> AskAsync(string model, string? chatTemplate, string question)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInferenceServing(new ServeOptions(model, Devices: "cpu", ChatTemplate: chatTemplate));
        using var host = builder.Build();
        await host.StartAsync();

        var chat = host.Services.GetRequiredService<IChatClient>();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 16 };
        ChatMessage[] messages = [new(ChatRole.System, "Answer briefly."), new(ChatRole.User, question)];
        var whole = await chat.GetResponseAsync(messages, options);
        var streamed = new StringBuilder();
        await foreach (var update in chat.GetStreamingResponseAsync(messages, options))
        {
            streamed.Append(update.Text);
        }

        await host.StopAsync();
        return (whole.Text, streamed.ToString());
    }

    /// <summary>The official OpenAI client's chat client for a running <c>di serve</c> (its address and served model name).</summary>
    public static OpenAI.Chat.ChatClient OpenAIChat(Uri server, string model, string apiKey = "none") =>
        new OpenAIClient(new ApiKeyCredential(apiKey), new OpenAIClientOptions { Endpoint = new Uri(server, "/v1") }).GetChatClient(model);
}
