using DistributedInference.Host.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace DistributedInference.Samples.ChatService;

/// <summary>A host app that serves: the model on this machine's CPU, the OpenAI-compatible HTTP API and IChatClient.</summary>
public static class ChatServiceSample
{
    /// <summary>Starts the host; it serves until stopped (<c>host.StopAsync()</c>, or Ctrl-C under <c>WaitForShutdownAsync</c>).</summary>
    /// <param name="model">A decoder's Hugging Face folder.</param>
    /// <param name="chatTemplate">A chat template file when the folder has none; null: the folder's.</param>
    /// <param name="port">The port to listen on, on 127.0.0.1 (0: any free port; the host's <see cref="ServingHost.Address"/> says which).</param>
    public static async Task<IHost> StartAsync(string model, string? chatTemplate, int port)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInferenceServing(
            new ServeOptions(model, Devices: "cpu", Host: "127.0.0.1", Port: port, ChatTemplate: chatTemplate),
            serveHttp: true);
        var host = builder.Build();
        await host.StartAsync();
        Console.Error.WriteLine($"ChatService: listening on {host.Services.GetRequiredService<ServingHost>().Address}");
        return host;
    }
}
