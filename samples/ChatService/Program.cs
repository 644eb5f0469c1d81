// dotnet run --project samples/ChatService -- MODEL [CHAT_TEMPLATE] [PORT]
// A host app that serves a model over the OpenAI-compatible API (and IChatClient inside) on 127.0.0.1, until Ctrl-C.
using System.Globalization;
using DistributedInference.Host.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: ChatService MODEL [CHAT_TEMPLATE] [PORT]");
    return 2;
}

var builder = Host.CreateApplicationBuilder();
builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);  // logs on stderr
var port = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 8000;
builder.Services.AddDistributedInferenceServing(
    new ServeOptions(args[0], Devices: "cpu", Host: "127.0.0.1", Port: port, ChatTemplate: args.Length > 1 ? args[1] : null),
    serveHttp: true);
using var host = builder.Build();
await host.StartAsync();
Console.Error.WriteLine($"ChatService: listening on {host.Services.GetRequiredService<ServingHost>().Address}");
await host.WaitForShutdownAsync();
return 0;
