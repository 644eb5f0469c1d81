using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Generation;

/// <summary>
/// The token ids of a model folder's <c>generation_config.json</c> that decide when generation stops and what pads
/// finished rows (transformers' <c>GenerationConfig</c>); sampling settings there are not applied (callers pass
/// <see cref="GenerationOptions"/>).
/// </summary>
/// <param name="EosTokenIds"><c>eos_token_id</c> (an int or a list), or null when absent.</param>
/// <param name="PadTokenId"><c>pad_token_id</c>, or null.</param>
public sealed record GenerationConfig(IReadOnlyList<long>? EosTokenIds, long? PadTokenId)
{
    /// <summary>Reads <c>generation_config.json</c> in <paramref name="directory"/>; null when there is none.</summary>
    /// <exception cref="InvalidInputException">The file is not valid JSON or an id is not an integer (one line).</exception>
    public static GenerationConfig? Read(string directory)
    {
        var path = Path.Combine(directory, "generation_config.json");
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            var json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidInputException($"{path}: not a JSON object");
            IReadOnlyList<long>? eos = json["eos_token_id"] switch
            {
                null => null,
                JsonArray list => list.Select(n => Id(path, "eos_token_id", n)).ToList(),
                var single => [Id(path, "eos_token_id", single)],
            };
            var pad = json["pad_token_id"] is { } p ? Id(path, "pad_token_id", p) : (long?)null;
            return new GenerationConfig(eos, pad);
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    private static long Id(string path, string key, JsonNode? node) =>
        node is JsonValue v && long.TryParse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture, out var id) && id >= 0
            ? id
            : throw new InvalidInputException($"{path}: {key} must be a non-negative integer or a list of them, got {node?.ToJsonString() ?? "null"}");
}
