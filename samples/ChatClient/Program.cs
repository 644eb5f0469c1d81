// dotnet run --project samples/ChatClient -- MODEL [CHAT_TEMPLATE] [QUESTION]
// A host app that talks to a model through Microsoft.Extensions.AI's IChatClient: the whole answer, then streamed.
using System.Text;
using DistributedInference.Host.Serving;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: ChatClient MODEL [CHAT_TEMPLATE] [QUESTION]");
    return 2;
}

var builder = Host.CreateApplicationBuilder();
builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);  // logs on stderr, answers on stdout
builder.Services.AddDistributedInferenceServing(new ServeOptions(args[0], Devices: "cpu", ChatTemplate: args.Length > 1 ? args[1] : null));
using var host = builder.Build();
await host.StartAsync();

var chat = host.Services.GetRequiredService<IChatClient>();
var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 16 };
ChatMessage[] messages = [new(ChatRole.System, "Answer briefly."), new(ChatRole.User, args.Length > 2 ? args[2] : "What is a zebra?")];
var whole = await chat.GetResponseAsync(messages, options);
Console.WriteLine(whole.Text);

var streamed = new StringBuilder();
await foreach (var update in chat.GetStreamingResponseAsync(messages, options))
{
    streamed.Append(update.Text);
}

Console.WriteLine(streamed);
await host.StopAsync();
return 0;
