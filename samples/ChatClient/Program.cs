// dotnet run --project samples/ChatClient -- MODEL [CHAT_TEMPLATE] [QUESTION]
// A host app that talks to a model through Microsoft.Extensions.AI's IChatClient: the whole answer, then streamed.
using DistributedInference.Samples.ChatClient;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: ChatClient MODEL [CHAT_TEMPLATE] [QUESTION]");
    return 2;
}

var (whole, streamed) = await ChatClientSample.AskAsync(args[0], args.Length > 1 ? args[1] : null, args.Length > 2 ? args[2] : "What is a zebra?");
Console.WriteLine(whole);
Console.WriteLine(streamed);
return 0;
