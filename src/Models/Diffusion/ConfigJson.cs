using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Reads the JSON files of a diffusers folder (<c>model_index.json</c>, each component's <c>config.json</c>,
/// <c>scheduler_config.json</c>) the way <c>from_pretrained</c> does: a key the file leaves out (or sets to null) takes
/// the class default; a key of the wrong type is one line naming the file and the key.
/// </summary>
internal sealed class ConfigJson
{
    private ConfigJson(string source, JsonObject json)
    {
        Source = source;
        Json = json;
    }

    /// <summary>The file, as errors name it.</summary>
    public string Source { get; }

    /// <summary>The parsed object.</summary>
    public JsonObject Json { get; }

    /// <exception cref="InvalidInputException">No such file, or not a JSON object.</exception>
    public static ConfigJson Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"{path}: no such file");
        }

        try
        {
            return new ConfigJson(path, JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new InvalidInputException($"{path}: not a JSON object"));
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    /// <summary>A parsed object; <paramref name="source"/> names it in errors.</summary>
    public static ConfigJson Of(string source, JsonObject json) => new(source, json);

    public bool Has(string key) => Json[key] is not null;

    public string? String(string key) => Json[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var other => throw Malformed(key, other, "a string"),
    };

    public bool? Bool(string key) => Json[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var other => throw Malformed(key, other, "true or false"),
    };

    public double? Double(string key) => Json[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture),
        var other => throw Malformed(key, other, "a number"),
    };

    public int? Int(string key) => Json[key] is { } node ? ToInt(key, node) : null;

    /// <summary>An integer or a list of integers (diffusers takes both for per-block values); null when absent.</summary>
    public IReadOnlyList<int>? IntOrList(string key) => Json[key] switch
    {
        null => null,
        JsonArray array => array.Select(node => node is null ? throw Malformed(key, array, "an integer or a list of integers") : ToInt(key, node)).ToList(),
        var node => [ToInt(key, node)],
    };

    public IReadOnlyList<string>? Strings(string key) => Json[key] switch
    {
        null => null,
        JsonArray array => array.Select(node => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Malformed(key, array, "a list of strings")).ToList(),
        var other => throw Malformed(key, other, "a list of strings"),
    };

    public InvalidInputException Malformed(string key, JsonNode? value, string expected) =>
        new($"{Source}: {key} must be {expected}, got {value?.ToJsonString() ?? "null"}");

    /// <summary>One line naming the file and a key whose value this implementation does not run.</summary>
    public InvalidInputException Unsupported(string key, string supported) =>
        new($"{Source}: {key} {Json[key]?.ToJsonString() ?? "null"} is not supported ({supported})");

    private int ToInt(string key, JsonNode node)
    {
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue)
        {
            return (int)d;
        }

        throw Malformed(key, node, "an integer");
    }
}
