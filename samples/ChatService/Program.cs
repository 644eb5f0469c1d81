// dotnet run --project samples/ChatService -- MODEL [CHAT_TEMPLATE] [PORT]
// A host app that serves a model over the OpenAI-compatible API (and IChatClient inside), until Ctrl-C.
using DistributedInference.Samples.ChatService;
using Microsoft.Extensions.Hosting;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: ChatService MODEL [CHAT_TEMPLATE] [PORT]");
    return 2;
}

using var host = await ChatServiceSample.StartAsync(args[0], args.Length > 1 ? args[1] : null, args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 8000);
await host.WaitForShutdownAsync();
return 0;
