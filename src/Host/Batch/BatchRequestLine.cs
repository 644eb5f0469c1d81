using System.Text.Json;
using DistributedInference.Host.Serving;

namespace DistributedInference.Host.Batch;

/// <summary>
/// One line of an OpenAI batch input file, read: <c>{"custom_id", "method": "POST", "url", "body"}</c>. A line that
/// cannot be run has <see cref="Error"/> set (and <see cref="CustomId"/> when one could be read); the batch answers it
/// with an error line and goes on.
/// </summary>
/// <param name="Line">1-based line number in the input file.</param>
/// <param name="CustomId">The line's <c>custom_id</c>; null when the line has no readable one.</param>
/// <param name="Url">One of <see cref="Urls"/> when <see cref="Error"/> is null.</param>
/// <param name="Body">The request body's fields when <see cref="Error"/> is null.</param>
public sealed record BatchRequestLine(long Line, string? CustomId, string? Url, RequestFields? Body, BatchError? Error)
{
    public const string Completions = "/v1/completions";
    public const string ChatCompletions = "/v1/chat/completions";
    public const string Embeddings = "/v1/embeddings";
    public const string ImageGenerations = "/v1/images/generations";

    /// <summary>The endpoints a batch line may name (OpenAI's batch API's, less those this project does not serve, and images).</summary>
    public static readonly IReadOnlyList<string> Urls = [Completions, ChatCompletions, Embeddings, ImageGenerations];

    /// <summary>Reads one non-blank line of the input.</summary>
    public static BatchRequestLine Parse(long line, string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            return Failed(line, null, "invalid_json", $"line {line} is not JSON: {e.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Failed(line, null, "invalid_json", $"line {line} is not a JSON object");
            }

            var customId = CustomIdOf(root);
            if (customId is null)
            {
                return Failed(line, null, "missing_custom_id", $"line {line} has no string 'custom_id'");
            }

            if (!root.TryGetProperty("method", out var method) || method.ValueKind != JsonValueKind.String || method.GetString() != "POST")
            {
                return Failed(line, customId, "invalid_method", "'method' must be \"POST\"");
            }

            if (!root.TryGetProperty("url", out var url) || url.ValueKind != JsonValueKind.String || !Urls.Contains(url.GetString()))
            {
                return Failed(line, customId, "invalid_url", $"'url' must be one of {string.Join(", ", Urls)}");
            }

            if (!root.TryGetProperty("body", out var body) || body.ValueKind != JsonValueKind.Object)
            {
                return Failed(line, customId, "invalid_body", "'body' must be a JSON object");
            }

            try
            {
                return new BatchRequestLine(line, customId, url.GetString(), RequestFields.Of(body), null);
            }
            catch (ApiException e)
            {
                return Failed(line, customId, "invalid_body", e.Message);
            }
        }
    }

    /// <summary>The <c>custom_id</c> of a line's object, when it is a non-empty string.</summary>
    public static string? CustomIdOf(JsonElement root)
    {
        try
        {
            return root.TryGetProperty("custom_id", out var id) && id.ValueKind == JsonValueKind.String && id.GetString() is { Length: > 0 } text ? text : null;
        }
        catch (InvalidOperationException)
        {
            // Not text (a lone surrogate escape): no readable id; the line is answered by its number.
            return null;
        }
    }

    private static BatchRequestLine Failed(long line, string? customId, string code, string message) =>
        new(line, customId, null, null, new BatchError(code, message, customId is null ? line : null));
}

/// <summary>Why a batch line has no response: OpenAI's batch error object.</summary>
/// <param name="Line">The input line, for a line whose <c>custom_id</c> could not be read (how a resumed batch knows it answered it).</param>
public sealed record BatchError(string Code, string Message, long? Line = null, string? Param = null);
