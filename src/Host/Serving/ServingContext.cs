using Microsoft.AspNetCore.Http;

namespace DistributedInference.Host.Serving;

/// <summary>What every endpoint needs: the served model, where requests run, and the request body read within bounds.</summary>
public sealed class ServingContext(ServedModel model, ServingBackend backend, ServeOptions options)
{
    public ServedModel Model { get; } = model;

    public ServingBackend Backend { get; } = backend;

    public ServeOptions Options { get; } = options;

    /// <summary>The body's JSON fields.</summary>
    /// <exception cref="ApiException">413 for a body over the limit, 400 for one that is not a JSON object.</exception>
    public async Task<RequestFields> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength > Options.MaxRequestBodyBytes)
        {
            await DiscardBodyAsync(context);
            throw BodyTooLarge();
        }

        using var buffer = new MemoryStream();
        try
        {
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw BodyTooLarge();
        }

        return RequestFields.Parse(buffer.ToArray());
    }

    // A body somewhat over the limit is read and dropped before the 413 goes out: a client still sending it when the server
    // closed the connection would see the connection reset, not the answer. A larger one is not read at all.
    private async Task DiscardBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength > Math.Max(1 << 20, Options.MaxRequestBodyBytes))
        {
            return;
        }

        if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = null;
        }

        var scratch = new byte[16 * 1024];
        while (await context.Request.Body.ReadAsync(scratch, context.RequestAborted) > 0)
        {
        }
    }

    private ApiException BodyTooLarge() =>
        new(413, $"The request body is larger than this server accepts ({Options.MaxRequestBodyBytes} bytes).", code: "request_too_large");

    /// <summary>Refuses a request for another model (404); a request without <c>model</c> is for the served one.</summary>
    public void CheckModel(RequestFields fields)
    {
        if (fields.String("model") is { } name && name != Model.Name)
        {
            throw ApiException.ModelNotFound(name);
        }
    }
}
