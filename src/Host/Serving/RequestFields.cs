using System.Text.Json;

namespace DistributedInference.Host.Serving;

/// <summary>
/// The fields of one JSON request body, read by name: each read marks the field as understood, and
/// <see cref="RefuseTheRest"/> refuses any field left, by name (an unsupported parameter is never silently ignored).
/// A field of the wrong type or out of range is a 400 naming it. <c>null</c> counts as not given, as OpenAI's API reads it.
/// </summary>
public sealed class RequestFields
{
    private readonly JsonElement _root;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    private RequestFields(JsonElement root) => _root = root;

    /// <exception cref="ApiException">Not JSON (400), or not an object.</exception>
    public static RequestFields Parse(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return Of(document.RootElement);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"The request body is not valid JSON: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    /// <summary>The fields of a body already parsed (a batch line's <c>body</c>); the element is copied.</summary>
    /// <exception cref="ApiException">Not an object, or a string that is not valid text (400).</exception>
    public static RequestFields Of(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.BadRequest("The request body must be a JSON object.");
        }

        RequireText(body);
        return new RequestFields(body.Clone());
    }

    // JsonDocument checks a string's bytes only when it is read: every name and string is read once here, so invalid UTF-8
    // or a lone surrogate escape (\ud800) is a 400 at the start, not a failure wherever the field is read later.
    private static void RequireText(JsonElement element)
    {
        try
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    element.GetString();
                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        RequireText(item);
                    }

                    break;
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        RequireText(property.Value);
                    }

                    break;
            }
        }
        catch (InvalidOperationException e)
        {
            throw ApiException.BadRequest($"The request body holds a string that is not valid text: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    /// <summary>The field, if given and not null.</summary>
    public JsonElement? Get(string name)
    {
        _read.Add(name);
        return _root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;
    }

    public string? String(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        _ => throw ApiException.BadRequest($"'{name}' must be a string.", name),
    };

    public bool? Bool(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw ApiException.BadRequest($"'{name}' must be a boolean.", name),
    };

    public long? Integer(string name, long min = long.MinValue, long max = long.MaxValue)
    {
        if (Get(name) is not { } v)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var value))
        {
            // OpenAI accepts 2.0 for an integer field; anything else is refused.
            if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && Math.Floor(d) == d && Math.Abs(d) < 9e15)
            {
                value = (long)d;
            }
            else
            {
                throw ApiException.BadRequest($"'{name}' must be an integer.", name);
            }
        }

        if (value < min || value > max)
        {
            throw ApiException.BadRequest($"'{name}' must be {(max == long.MaxValue ? $"at least {min}" : $"between {min} and {max}")}, got {value}.", name);
        }

        return value;
    }

    public double? Number(string name, double min = double.MinValue, double max = double.MaxValue)
    {
        if (Get(name) is not { } v)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var value))
        {
            throw ApiException.BadRequest($"'{name}' must be a number.", name);
        }

        if (value < min || value > max)
        {
            throw ApiException.BadRequest($"'{name}' must be between {min} and {max}, got {value}.", name);
        }

        return value;
    }

    /// <summary>A field accepted only at its neutral value (OpenAI parameters this server does not implement).</summary>
    public void OnlyDefault(string name, Func<JsonElement, bool> isDefault)
    {
        if (Get(name) is { } v && !isDefault(v))
        {
            throw ApiException.Unsupported(name);
        }
    }

    /// <summary>Refuses the first field no one read.</summary>
    /// <exception cref="ApiException">400 naming it.</exception>
    public void RefuseTheRest()
    {
        foreach (var property in _root.EnumerateObject())
        {
            if (!_read.Contains(property.Name))
            {
                throw ApiException.Unsupported(property.Name);
            }
        }
    }
}
