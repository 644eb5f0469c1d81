using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace DistributedInference.Host.Serving;

/// <summary>The SSE stream of a streamed completion: <c>data: {json}</c> events, then <c>data: [DONE]</c>, as OpenAI sends them.</summary>
public sealed class ServerSentEvents
{
    private readonly HttpResponse _response;

    private ServerSentEvents(HttpResponse response) => _response = response;

    public static async Task<ServerSentEvents> StartAsync(HttpContext context)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        await context.Response.StartAsync(context.RequestAborted);
        return new ServerSentEvents(context.Response);
    }

    public Task SendAsync(JsonNode chunk, CancellationToken cancellation) => WriteAsync("data: " + chunk.ToJsonString(OpenAIJson.Options) + "\n\n", cancellation);

    public Task DoneAsync(CancellationToken cancellation) => WriteAsync("data: [DONE]\n\n", cancellation);

    private async Task WriteAsync(string text, CancellationToken cancellation)
    {
        await _response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), cancellation);
        await _response.Body.FlushAsync(cancellation);
    }
}
