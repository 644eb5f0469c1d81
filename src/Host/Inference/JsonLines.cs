using System.Text.Encodings.Web;
using System.Text.Json;

namespace DistributedInference.Host.Inference;

/// <summary>
/// How every JSON line <c>di</c> writes is encoded: text as UTF-8 characters rather than \u escapes (a completion or a
/// token such as <c>&lt;|begin_of_text|&gt;</c> reads as itself), which is safe for files and terminals, not for HTML.
/// </summary>
public static class JsonLines
{
    public static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);
}
