using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace DistributedInference.Host.Serving;

/// <summary>
/// A request the API refuses, answered with OpenAI's error object (<c>{"error": {"message", "type", "param", "code"}}</c>)
/// and its HTTP status: 400 a bad or unsupported parameter, 401 a missing or wrong API key, 404 an unknown model or
/// route, 413 a body or prompt too large, 429 too many requests (with <c>Retry-After</c>), 503 no device serves the model.
/// </summary>
public sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;

    public string Type { get; } = type;

    public string? Param { get; } = param;

    public string? Code { get; } = code;

    /// <summary>Seconds to send in <c>Retry-After</c> (429, 503), or null.</summary>
    public int? RetryAfterSeconds { get; init; }

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param: param, code: code);

    public static ApiException Unsupported(string param) =>
        new(400, $"Unsupported parameter: '{param}' is not supported by this server.", param: param, code: "unsupported_parameter");

    public static ApiException ModelNotFound(string model) =>
        new(404, $"The model `{model}` does not exist.", param: "model", code: "model_not_found");

    public static ApiException Unavailable(string message) =>
        new(503, message, "server_error", code: "service_unavailable") { RetryAfterSeconds = 5 };

    /// <summary>Writes the error object with the status (and Retry-After) to <paramref name="context"/>.</summary>
    public Task WriteAsync(HttpContext context) => Write(context, Status, Message, Type, Param, Code, RetryAfterSeconds);

    public static async Task Write(HttpContext context, int status, string message, string type, string? param = null, string? code = null, int? retryAfter = null)
    {
        context.Response.StatusCode = status;
        if (retryAfter is { } seconds)
        {
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        context.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(context.Response.Body, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        json.WriteStartObject();
        json.WriteStartObject("error");
        json.WriteString("message", message);
        json.WriteString("type", type);
        WriteOptional(json, "param", param);
        WriteOptional(json, "code", code);
        json.WriteEndObject();
        json.WriteEndObject();
        await json.FlushAsync();
    }

    private static void WriteOptional(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }
}
