using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Templates;

/// <summary>
/// JSON in and out of templates as Python does it. In: objects keep their key order, integers stay ints and
/// <c>12.0</c> stays a float (Python's <c>json.loads</c>). Out: transformers' <c>tojson</c> filter, which is
/// <c>json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)</c>: separators
/// <c>", "</c> and <c>": "</c> (<c>","</c> at line ends with an indent), floats in Python's repr, non-ASCII text raw,
/// only <c>"</c>, <c>\</c> and control characters escaped (lowercase <c>\u00XX</c>), no HTML escaping.
/// </summary>
internal static class PyJson
{
    /// <summary>A template value from a JSON element.</summary>
    public static object? FromElement(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var dict = new PyDict();
                foreach (var property in element.EnumerateObject())
                {
                    dict.Set(property.Name, FromElement(property.Value));
                }

                return dict;
            case JsonValueKind.Array:
                return element.EnumerateArray().Select(FromElement).ToList();
            case JsonValueKind.String:
                return element.GetString();
            case JsonValueKind.Number:
                return Number(element.GetRawText());
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            default:
                return null;
        }
    }

    /// <summary>A template value from a JSON node (a node made from a CLR number keeps its type: long is int, double is float).</summary>
    public static object? FromNode(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject obj:
                var dict = new PyDict();
                foreach (var (key, value) in obj)
                {
                    dict.Set(key, FromNode(value));
                }

                return dict;
            case JsonArray array:
                return array.Select(FromNode).ToList();
            case JsonValue value:
                if (value.TryGetValue<JsonElement>(out var element))
                {
                    return FromElement(element);
                }

                return value.GetValueKind() switch
                {
                    JsonValueKind.String => value.GetValue<string>(),
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    JsonValueKind.Number when value.TryGetValue<long>(out var l) => l,
                    JsonValueKind.Number when value.TryGetValue<int>(out var i) => (long)i,
                    JsonValueKind.Number when value.TryGetValue<double>(out var d) => d,
                    JsonValueKind.Number when value.TryGetValue<float>(out var f) => (double)f,
                    JsonValueKind.Number => Number(value.ToJsonString()),
                    _ => null,
                };
            default:
                return null;
        }
    }

    private static object Number(string text)
    {
        if (text.IndexOfAny(['.', 'e', 'E']) < 0 && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
        {
            return integer;
        }

        return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>Python's <c>json.dumps</c> with transformers' <c>tojson</c> defaults.</summary>
    /// <param name="indent">null: one line; an int: that many spaces per level; a string: that string per level.</param>
    /// <exception cref="TemplateError">A value JSON cannot hold (undefined, a namespace, a key that is not a str, int,
    /// float, bool or None).</exception>
    public static string Dumps(object? value, object? indent = null, bool ensureAscii = false, bool sortKeys = false, PyTuple? separators = null)
    {
        var indentText = indent switch
        {
            null => null,
            string s => s,
            bool or long => new string(' ', (int)Math.Max(0, PyOps.ToIndex(indent))),
            _ => throw TemplateError.Type($"indent must be an int or a str, not {PyOps.TypeName(indent)}"),
        };
        var (itemSeparator, keySeparator) = indentText is null ? (", ", ": ") : (",", ": ");
        if (separators is { Count: 2 })
        {
            itemSeparator = separators.Items[0] as string ?? itemSeparator;
            keySeparator = separators.Items[1] as string ?? keySeparator;
        }

        var builder = new StringBuilder();
        Write(builder, value, indentText, 0, itemSeparator, keySeparator, ensureAscii, sortKeys, 0);
        return builder.ToString();
    }

    private static void Write(StringBuilder b, object? value, string? indent, int level, string itemSeparator, string keySeparator, bool ensureAscii, bool sortKeys, int depth)
    {
        if (depth > 500)
        {
            throw TemplateError.Value("Circular reference detected");
        }

        switch (value)
        {
            case null:
                b.Append("null");
                return;
            case bool v:
                b.Append(v ? "true" : "false");
                return;
            case long l:
                b.Append(l.ToString(CultureInfo.InvariantCulture));
                return;
            case double d:
                b.Append(FloatJson(d));
                return;
            case string s:
                WriteString(b, s, ensureAscii);
                return;
            case List<object?> or PyTuple:
                {
                    var items = value is PyTuple t ? t.Items : (List<object?>)value;
                    if (items.Count == 0)
                    {
                        b.Append("[]");
                        return;
                    }

                    b.Append('[');
                    for (var i = 0; i < items.Count; i++)
                    {
                        if (i > 0)
                        {
                            b.Append(itemSeparator);
                        }

                        NewLine(b, indent, level + 1);
                        Write(b, items[i], indent, level + 1, itemSeparator, keySeparator, ensureAscii, sortKeys, depth + 1);
                    }

                    NewLine(b, indent, level);
                    b.Append(']');
                    return;
                }

            case PyDict dict:
                {
                    if (dict.Count == 0)
                    {
                        b.Append("{}");
                        return;
                    }

                    var pairs = dict.Items.ToList();
                    if (sortKeys)
                    {
                        pairs.Sort((x, y) => PyOps.Compare(x.Key, y.Key, "<"));
                    }

                    b.Append('{');
                    var first = true;
                    foreach (var (key, item) in pairs)
                    {
                        if (!first)
                        {
                            b.Append(itemSeparator);
                        }

                        first = false;
                        NewLine(b, indent, level + 1);
                        var keyText = key switch
                        {
                            string s => s,
                            double d => FloatJson(d),
                            bool v => v ? "true" : "false",
                            long l => l.ToString(CultureInfo.InvariantCulture),
                            null => "null",
                            _ => throw TemplateError.Type($"keys must be str, int, float, bool or None, not {PyOps.TypeName(key)}"),
                        };
                        WriteString(b, keyText, ensureAscii);
                        b.Append(keySeparator);
                        Write(b, item, indent, level + 1, itemSeparator, keySeparator, ensureAscii, sortKeys, depth + 1);
                    }

                    NewLine(b, indent, level);
                    b.Append('}');
                    return;
                }

            default:
                throw TemplateError.Type($"Object of type {PyOps.TypeName(value)} is not JSON serializable");
        }
    }

    private static void NewLine(StringBuilder b, string? indent, int level)
    {
        if (indent is null)
        {
            return;
        }

        b.Append('\n');
        for (var i = 0; i < level; i++)
        {
            b.Append(indent);
        }
    }

    private static string FloatJson(double d) =>
        double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyText.FloatRepr(d);

    private static void WriteString(StringBuilder b, string s, bool ensureAscii)
    {
        b.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"':
                    b.Append("\\\"");
                    break;
                case '\\':
                    b.Append("\\\\");
                    break;
                case '\n':
                    b.Append("\\n");
                    break;
                case '\r':
                    b.Append("\\r");
                    break;
                case '\t':
                    b.Append("\\t");
                    break;
                case '\b':
                    b.Append("\\b");
                    break;
                case '\f':
                    b.Append("\\f");
                    break;
                default:
                    if (c < ' ' || (ensureAscii && c > '~'))
                    {
                        b.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    }
                    else
                    {
                        b.Append(c);
                    }

                    break;
            }
        }

        b.Append('"');
    }
}
