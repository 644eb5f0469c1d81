using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;

namespace DistributedInference.Models.Templates;

/// <summary>
/// jinja2 3.1's filters (<c>jinja2/filters.py</c>) with transformers' <c>tojson</c> in place of jinja2's. Filters that
/// take a test or filter by name (<c>select</c>, <c>reject</c>, <c>selectattr('role', 'equalto', 'user')</c>,
/// <c>map('upper')</c>, <c>map(attribute='name')</c>) apply it to each item; those that yield lazily in jinja2
/// (<c>select</c>, <c>map</c>, <c>unique</c>, <c>reverse</c>, <c>batch</c>, <c>slice</c>) give a one-pass generator.
/// Not provided (a template naming them fails to parse): <c>random</c>, <c>urlize</c>, <c>urlencode</c>,
/// <c>filesizeformat</c>, <c>wordwrap</c>, <c>xmlattr</c>.
/// </summary>
internal static partial class BuiltinFilters
{
    private delegate object? Filter(TemplateRenderer renderer, object? value, CallArguments arguments);

    private static readonly Dictionary<string, Filter> Filters = new(StringComparer.Ordinal)
    {
        ["abs"] = (_, v, a) => Abs(v, a),
        ["attr"] = (_, v, a) => Attr(v, a),
        ["batch"] = (_, v, a) => Batch(v, a),
        ["capitalize"] = (_, v, a) => PyStrings.Capitalize(Text(v, a, "capitalize")),
        ["center"] = (_, v, a) =>
        {
            var b = a.Bind("center", ["width"]);
            return PyStrings.Pad(PyText.Str(v), b[0] == CallArguments.Missing ? 80 : PyOps.ToIndex(b[0]), " ", 0);
        },
        ["count"] = (_, v, a) => Length(v, a),
        ["length"] = (_, v, a) => Length(v, a),
        ["d"] = (_, v, a) => Default(v, a),
        ["default"] = (_, v, a) => Default(v, a),
        ["dictsort"] = (_, v, a) => DictSort(v, a),
        ["e"] = (_, v, a) => Escape(Text(v, a, "escape")),
        ["escape"] = (_, v, a) => Escape(Text(v, a, "escape")),
        ["forceescape"] = (_, v, a) => Escape(Text(v, a, "forceescape")),
        ["first"] = (_, v, a) => First(v, a),
        ["float"] = (_, v, a) => ToFloat(v, a),
        ["format"] = (_, v, a) => FormatFilter(v, a),
        ["groupby"] = (r, v, a) => GroupBy(v, a),
        ["indent"] = (_, v, a) => Indent(v, a),
        ["int"] = (_, v, a) => ToInt(v, a),
        ["items"] = (_, v, a) => Items(v, a),
        ["join"] = (_, v, a) => Join(v, a),
        ["last"] = (_, v, a) => Last(v, a),
        ["list"] = (_, v, a) =>
        {
            a.Bind("list", []);
            return PyOps.Iterate(v).ToList();
        },
        ["lower"] = (_, v, a) => Text(v, a, "lower").ToLowerInvariant(),
        ["upper"] = (_, v, a) => Text(v, a, "upper").ToUpperInvariant(),
        ["map"] = Map,
        ["max"] = (_, v, a) => MinMax(v, a, "max"),
        ["min"] = (_, v, a) => MinMax(v, a, "min"),
        ["pprint"] = (_, v, a) =>
        {
            a.Bind("pprint", []);
            return PyText.Repr(v);
        },
        ["reject"] = (r, v, a) => SelectOrReject(r, v, a, select: false, attribute: false, "reject"),
        ["rejectattr"] = (r, v, a) => SelectOrReject(r, v, a, select: false, attribute: true, "rejectattr"),
        ["select"] = (r, v, a) => SelectOrReject(r, v, a, select: true, attribute: false, "select"),
        ["selectattr"] = (r, v, a) => SelectOrReject(r, v, a, select: true, attribute: true, "selectattr"),
        ["replace"] = (_, v, a) => Replace(v, a),
        ["reverse"] = (_, v, a) => Reverse(v, a),
        ["round"] = (_, v, a) => Round(v, a),
        ["safe"] = (_, v, a) => Text(v, a, "safe"),
        ["slice"] = (_, v, a) => Slice(v, a),
        ["sort"] = (_, v, a) => Sort(v, a),
        ["string"] = (_, v, a) => Text(v, a, "string"),
        ["striptags"] = (_, v, a) => StripTags(Text(v, a, "striptags")),
        ["sum"] = (_, v, a) => Sum(v, a),
        ["title"] = (_, v, a) => Title(Text(v, a, "title")),
        ["tojson"] = (_, v, a) => ToJson(v, a),
        ["trim"] = (_, v, a) =>
        {
            var b = a.Bind("trim", ["chars"]);
            return PyStrings.Strip(PyText.Str(v), b[0] == CallArguments.Missing || b[0] is null ? null : PyText.Str(b[0]));
        },
        ["truncate"] = (_, v, a) => Truncate(v, a),
        ["unique"] = (_, v, a) => Unique(v, a),
        ["wordcount"] = (_, v, a) => (long)WordRegex().Matches(Text(v, a, "wordcount")).Count,
    };

    public static bool Exists(string name) => Filters.ContainsKey(name);

    /// <exception cref="TemplateError">An unknown filter (through <c>map('name')</c>), or the filter failed.</exception>
    public static object? Apply(TemplateRenderer renderer, string name, object? value, CallArguments arguments)
    {
        if (!Filters.TryGetValue(name, out var filter))
        {
            throw new TemplateError("TemplateRuntimeError", $"No filter named {PyText.Repr(name)}.");
        }

        return filter(renderer, value, arguments);
    }

    private static string Text(object? value, CallArguments arguments, string name)
    {
        arguments.Bind(name, []);
        return PyText.Str(value);
    }

    private static bool Flag(object? value) => value != CallArguments.Missing && PyOps.Truthy(value);

    private static object? Or(object? value, object? fallback) => value == CallArguments.Missing ? fallback : value;

    private static object? Abs(object? value, CallArguments arguments)
    {
        arguments.Bind("abs", []);
        return value switch
        {
            bool or long => (object)Math.Abs(PyOps.ToIndex(value)),
            double d => Math.Abs(d),
            Undefined u => throw u.Fail(),
            _ => throw TemplateError.Type($"bad operand type for abs(): {PyText.Repr(PyOps.TypeName(value))}"),
        };
    }

    private static object? Attr(object? value, CallArguments arguments)
    {
        var name = PyText.Str(arguments.Bind("attr", ["name"], 1)[0]);
        if (value is Undefined u)
        {
            throw u.Fail();
        }

        var attribute = PyMethods.GetAttribute(value, name);
        if (attribute == CallArguments.Missing)
        {
            return Undefined.Member(value, name);
        }

        return PyMethods.IsSafe(value, name) ? attribute : Undefined.Unsafe(value, name);
    }

    private static long Length(object? value, CallArguments arguments)
    {
        arguments.Bind("length", []);
        return PyOps.Length(value);
    }

    private static object? Default(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("default", ["default_value", "boolean"]);
        return value is Undefined || (Flag(b[1]) && !PyOps.Truthy(value)) ? Or(b[0], string.Empty) : value;
    }

    /// <summary>markupsafe's <c>escape</c>.</summary>
    private static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal)
        .Replace("<", "&lt;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal);

    private static object? First(object? value, CallArguments arguments)
    {
        arguments.Bind("first", []);
        foreach (var item in PyOps.Iterate(value))
        {
            return item;
        }

        return Undefined.WithHint("No first item, sequence was empty.");
    }

    private static object? Last(object? value, CallArguments arguments)
    {
        arguments.Bind("last", []);
        if (value is PyGenerator)
        {
            throw TemplateError.Type("'generator' object is not reversible");
        }

        var items = PyOps.Iterate(value).ToList();
        return items.Count > 0 ? items[^1] : Undefined.WithHint("No last item, sequence was empty.");
    }

    private static object? ToFloat(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("float", ["default"]);
        return ParseFloat(value) ?? Or(b[0], 0.0);
    }

    private static double? ParseFloat(object? value)
    {
        switch (value)
        {
            case double d:
                return d;
            case bool or long:
                return PyOps.ToIndex(value);
            case string s:
                var text = PyStrings.Strip(s, null).Replace("_", string.Empty, StringComparison.Ordinal).ToLowerInvariant();
                return text switch
                {
                    "inf" or "+inf" or "infinity" or "+infinity" => double.PositiveInfinity,
                    "-inf" or "-infinity" => double.NegativeInfinity,
                    "nan" or "+nan" or "-nan" => double.NaN,
                    _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) ? parsed : null,
                };
            default:
                return null;
        }
    }

    private static object? ToInt(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("int", ["default", "base"]);
        var fallback = Or(b[0], 0L);
        var numberBase = b[1] == CallArguments.Missing ? 10 : (int)PyOps.ToIndex(b[1]);
        switch (value)
        {
            case bool or long:
                return PyOps.ToIndex(value);
            case double d:
                return double.IsFinite(d) ? (long)Math.Truncate(d) : fallback;
            case string s:
                var text = PyStrings.Strip(s, null).Replace("_", string.Empty, StringComparison.Ordinal);
                var negative = text.StartsWith('-');
                var digits = text.TrimStart('+', '-');
                if (numberBase == 16 && digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
                {
                    digits = digits[2..];
                }
                else if (numberBase == 8 && digits.StartsWith("0o", StringComparison.OrdinalIgnoreCase))
                {
                    digits = digits[2..];
                }
                else if (numberBase == 2 && digits.StartsWith("0b", StringComparison.OrdinalIgnoreCase))
                {
                    digits = digits[2..];
                }

                try
                {
                    if (digits.Length > 0 && digits.All(char.IsAsciiHexDigit))
                    {
                        var parsed = Convert.ToInt64(digits, numberBase);
                        return negative ? -parsed : parsed;
                    }
                }
                catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
                {
                }

                return ParseFloat(s) is { } f && double.IsFinite(f) ? (long)Math.Truncate(f) : fallback;
            default:
                return fallback;
        }
    }

    private static string FormatFilter(object? value, CallArguments arguments)
    {
        if (arguments.Positional.Count > 0 && arguments.Keywords.Count > 0)
        {
            throw TemplateError.FilterArgument("can't handle positional and keyword arguments at the same time");
        }

        object? values;
        if (arguments.Keywords.Count > 0)
        {
            var dict = new PyDict();
            foreach (var (key, item) in arguments.Keywords)
            {
                dict.Set(key, item);
            }

            values = dict;
        }
        else
        {
            values = new PyTuple(arguments.Positional);
        }

        return PyFormat.Printf(PyText.Str(value), values);
    }

    private static Func<object?, object?> AttributeGetter(object? attribute, Func<object?, object?>? postprocess = null, object? fallback = null)
    {
        var parts = attribute switch
        {
            null => [],
            string s => s.Split('.').Select(p => p.Length > 0 && p.All(char.IsAsciiDigit) ? (object?)long.Parse(p, CultureInfo.InvariantCulture) : p).ToList(),
            _ => [attribute],
        };
        return item =>
        {
            foreach (var part in parts)
            {
                item = TemplateRenderer.GetItem(item, part);
                if (fallback is not null && item is Undefined)
                {
                    item = fallback;
                }
            }

            return postprocess is null ? item : postprocess(item);
        };
    }

    private static object? IgnoreCase(object? value) => value is string s ? s.ToLowerInvariant() : value;

    private static object? Items(object? value, CallArguments arguments)
    {
        arguments.Bind("items", []);
        return value switch
        {
            Undefined => new PyGenerator([], "do_items"),
            PyDict dict => new PyGenerator(dict.Items.Select(p => (object?)new PyTuple([p.Key, p.Value])).ToList(), "do_items"),
            _ => throw TemplateError.Type("Can only get item pairs from a mapping."),
        };
    }

    private static string Join(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("join", ["d", "attribute"]);
        var separator = b[0] == CallArguments.Missing ? string.Empty : PyText.Str(b[0]);
        var items = PyOps.Iterate(value);
        if (b[1] != CallArguments.Missing && b[1] is not null)
        {
            items = items.Select(AttributeGetter(b[1])).ToList();
        }

        return string.Join(separator, items.Select(PyText.Str));
    }

    private static object? Map(TemplateRenderer renderer, object? value, CallArguments arguments)
    {
        Func<object?, object?> function;
        if (arguments.Positional.Count == 0 && arguments.Keywords.Any(k => k.Key == "attribute"))
        {
            var attribute = arguments.Keywords.First(k => k.Key == "attribute").Value;
            var fallback = arguments.Keywords.Where(k => k.Key == "default").Select(k => k.Value).FirstOrDefault();
            var unexpected = arguments.Keywords.FirstOrDefault(k => k.Key is not ("attribute" or "default"));
            if (unexpected.Key is not null)
            {
                throw TemplateError.FilterArgument($"Unexpected keyword argument {PyText.Repr(unexpected.Key)}");
            }

            function = AttributeGetter(attribute, fallback: fallback);
        }
        else
        {
            if (arguments.Positional.Count == 0)
            {
                throw TemplateError.FilterArgument("map requires a filter argument");
            }

            var name = PyText.Str(arguments.Positional[0]);
            var rest = new CallArguments(arguments.Positional.Skip(1).ToList(), arguments.Keywords);
            function = item => Apply(renderer, name, item, rest);
        }

        var items = PyOps.Truthy(value) ? PyOps.Iterate(value).Select(function) : [];
        return new PyGenerator(items, "sync_do_map");
    }

    private static object? SelectOrReject(TemplateRenderer renderer, object? value, CallArguments arguments, bool select, bool attribute, string name)
    {
        Func<object?, object?> transform = x => x;
        var offset = 0;
        if (attribute)
        {
            if (arguments.Positional.Count == 0)
            {
                throw TemplateError.FilterArgument("Missing parameter for attribute name");
            }

            transform = AttributeGetter(arguments.Positional[0]);
            offset = 1;
        }

        Func<object?, bool> test;
        if (arguments.Positional.Count > offset)
        {
            var testName = PyText.Str(arguments.Positional[offset]);
            var rest = new CallArguments(arguments.Positional.Skip(offset + 1).ToList(), arguments.Keywords);
            test = item => BuiltinTests.Apply(renderer, testName, item, rest);
        }
        else
        {
            test = PyOps.Truthy;
        }

        var items = PyOps.Truthy(value) ? PyOps.Iterate(value).Where(item => test(transform(item)) == select) : [];
        return new PyGenerator(items, name == "select" || name == "reject" || name.EndsWith("attr", StringComparison.Ordinal) ? "select_or_reject" : name);
    }

    private static object? MinMax(object? value, CallArguments arguments, string name)
    {
        var b = arguments.Bind(name, ["case_sensitive", "attribute"]);
        var items = PyOps.Iterate(value).ToList();
        if (items.Count == 0)
        {
            return Undefined.WithHint("No aggregated item, sequence was empty.");
        }

        var key = AttributeGetter(Or(b[1], null), Flag(b[0]) ? null : IgnoreCase);
        var best = items[0];
        var bestKey = key(best);
        foreach (var item in items.Skip(1))
        {
            var k = key(item);
            var c = PyOps.Compare(k, bestKey, name == "min" ? "<" : ">");
            if ((name == "min" && c < 0) || (name == "max" && c > 0))
            {
                best = item;
                bestKey = k;
            }
        }

        return best;
    }

    private static List<object?> Sorted(IEnumerable<object?> items, Func<object?, object?> key, bool reverse)
    {
        var keyed = items.Select((item, index) => (Item: item, Key: key(item), Index: index)).ToList();
        keyed.Sort((x, y) =>
        {
            var c = reverse ? PyOps.Compare(y.Key, x.Key, "<") : PyOps.Compare(x.Key, y.Key, "<");
            return c != 0 ? c : x.Index.CompareTo(y.Index);
        });
        return keyed.Select(k => k.Item).ToList();
    }

    private static object? Sort(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("sort", ["reverse", "case_sensitive", "attribute"]);
        var attribute = Or(b[2], null);
        object?[]? parts = attribute switch
        {
            string s => s.Split(','),
            null => null,
            _ => [attribute],
        };
        Func<object?, object?> key;
        if (parts is null || parts.Length <= 1)
        {
            key = AttributeGetter(parts?[0], Flag(b[1]) ? null : IgnoreCase);
        }
        else
        {
            var getters = parts.Select(p => AttributeGetter(p, Flag(b[1]) ? null : IgnoreCase)).ToList();
            key = item => getters.Select(g => g(item)).ToList();
        }

        return Sorted(PyOps.Iterate(value), key, Flag(b[0]));
    }

    private static object? DictSort(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("dictsort", ["case_sensitive", "by", "reverse"]);
        var by = Or(b[1], "key") as string;
        var position = by switch
        {
            "key" => 0,
            "value" => 1,
            _ => throw TemplateError.FilterArgument("You can only sort by either \"key\" or \"value\""),
        };
        if (value is not PyDict dict)
        {
            throw TemplateError.Type($"{PyText.Repr(PyOps.TypeName(value))} object has no attribute 'items'");
        }

        var pairs = dict.Items.Select(p => (object?)new PyTuple([p.Key, p.Value]));
        return Sorted(pairs, item =>
        {
            var part = ((PyTuple)item!).Items[position];
            return Flag(b[0]) ? part : IgnoreCase(part);
        }, Flag(b[2]));
    }

    private static object? Unique(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("unique", ["case_sensitive", "attribute"]);
        var key = AttributeGetter(Or(b[1], null), Flag(b[0]) ? null : IgnoreCase);
        IEnumerable<object?> Run()
        {
            var seen = new PyDict();
            foreach (var item in PyOps.Iterate(value))
            {
                var k = key(item);
                if (!seen.ContainsKey(k))
                {
                    seen.Set(k, null);
                    yield return item;
                }
            }
        }

        return new PyGenerator(Run(), "do_unique");
    }

    private static object? GroupBy(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("groupby", ["attribute", "default", "case_sensitive"], 1);
        var fallback = Or(b[1], null);
        var caseSensitive = Flag(b[2]);
        var key = AttributeGetter(b[0], caseSensitive ? null : IgnoreCase, fallback);
        var output = AttributeGetter(b[0], fallback: fallback);
        var sorted = Sorted(PyOps.Iterate(value), key, reverse: false);
        var groups = new List<object?>();
        var i = 0;
        while (i < sorted.Count)
        {
            var groupKey = key(sorted[i]);
            var members = new List<object?>();
            while (i < sorted.Count && PyOps.Equal(key(sorted[i]), groupKey))
            {
                members.Add(sorted[i++]);
            }

            groups.Add(new PyTuple([caseSensitive ? groupKey : output(members[0]), members], ["grouper", "list"]));
        }

        return groups;
    }

    private static string Indent(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("indent", ["width", "first", "blank"]);
        var width = Or(b[0], 4L);
        var indentation = width is string s ? s : new string(' ', (int)Math.Max(0, PyOps.ToIndex(width)));
        var text = PyText.Str(value) + "\n";
        string result;
        var lines = PyStrings.SplitLines(text, keepEnds: false).Select(l => (string)l!).ToList();
        if (Flag(b[2]))
        {
            result = string.Join("\n" + indentation, lines);
        }
        else
        {
            result = lines[0];
            if (lines.Count > 1)
            {
                result += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? indentation + l : l));
            }
        }

        return Flag(b[1]) ? indentation + result : result;
    }

    private static string Replace(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("replace", ["old", "new", "count"], 2);
        var count = b[2] == CallArguments.Missing || b[2] is null ? -1L : PyOps.ToIndex(b[2]);
        var args = new CallArguments([PyText.Str(b[0]), PyText.Str(b[1]), count], []);
        return (string)PyMethods.Call(null!, PyText.Str(value), "replace", args)!;
    }

    private static object? Reverse(object? value, CallArguments arguments)
    {
        arguments.Bind("reverse", []);
        return value switch
        {
            string s => string.Concat(PyStrings.Characters(s).AsEnumerable().Reverse()),
            List<object?> or PyTuple => new PyGenerator(PyOps.Iterate(value).Reverse().ToList(), "reversed"),
            _ => PyOps.IsIterable(value) ? PyOps.Iterate(value).Reverse().ToList() : throw TemplateError.FilterArgument("argument must be iterable"),
        };
    }

    private static object? Round(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("round", ["precision", "method"]);
        var precision = (int)PyOps.ToIndex(Or(b[0], 0L));
        var method = Or(b[1], "common") as string;
        var number = value switch
        {
            double d => d,
            bool or long => PyOps.ToIndex(value),
            Undefined u => throw u.Fail(),
            _ => throw TemplateError.Type($"type {PyOps.TypeName(value)} doesn't define __round__ method"),
        };
        switch (method)
        {
            case "common":
                return value is double ? RoundHalfEven(number, precision) : (object)RoundInteger(PyOps.ToIndex(value), precision);
            case "ceil" or "floor":
                var scale = Math.Pow(10, precision);
                return (method == "ceil" ? Math.Ceiling(number * scale) : Math.Floor(number * scale)) / scale;
            default:
                throw TemplateError.FilterArgument("method must be common, ceil or floor");
        }
    }

    private static long RoundInteger(long value, int precision)
    {
        if (precision >= 0)
        {
            return value;
        }

        var unit = (long)Math.Pow(10, -precision);
        var quotient = Math.DivRem(value, unit, out var remainder);
        if (remainder < 0)
        {
            quotient--;
            remainder += unit;
        }

        if ((remainder * 2) > unit || ((remainder * 2) == unit && quotient % 2 != 0))
        {
            quotient++;
        }

        return quotient * unit;
    }

    /// <summary>Python's <c>round(x, n)</c> on a float: the exact binary value rounded half to even, as a float.</summary>
    private static double RoundHalfEven(double x, int precision)
    {
        if (!double.IsFinite(x) || x == 0)
        {
            return x;
        }

        var bits = BitConverter.DoubleToInt64Bits(x);
        var exponent = (int)((bits >> 52) & 0x7FF);
        var mantissa = bits & 0xFFFFFFFFFFFFFL;
        if (exponent == 0)
        {
            exponent++;
        }
        else
        {
            mantissa |= 1L << 52;
        }

        exponent -= 1075;
        var numerator = new BigInteger(mantissa);
        var denominator = BigInteger.One;
        if (exponent > 0)
        {
            numerator <<= exponent;
        }
        else
        {
            denominator <<= -exponent;
        }

        if (precision >= 0)
        {
            numerator *= BigInteger.Pow(10, precision);
        }
        else
        {
            denominator *= BigInteger.Pow(10, -precision);
        }

        var quotient = BigInteger.DivRem(numerator, denominator, out var remainder);
        var twice = remainder * 2;
        if (twice > denominator || (twice == denominator && !quotient.IsEven))
        {
            quotient++;
        }

        var text = quotient.ToString(CultureInfo.InvariantCulture) + "E" + (-precision).ToString(CultureInfo.InvariantCulture);
        var result = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        return x < 0 ? -result : result;
    }

    private static object? Slice(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("slice", ["slices", "fill_with"], 1);
        var slices = (int)PyOps.ToIndex(b[0]);
        var fill = Or(b[1], null);
        var items = PyOps.Iterate(value).ToList();
        var perSlice = items.Count / slices;
        var withExtra = items.Count % slices;
        var result = new List<object?>();
        var offset = 0;
        for (var n = 0; n < slices; n++)
        {
            var start = offset + (n * perSlice);
            if (n < withExtra)
            {
                offset++;
            }

            var end = offset + ((n + 1) * perSlice);
            var part = items.Skip(start).Take(end - start).ToList();
            if (fill is not null && n >= withExtra)
            {
                part.Add(fill);
            }

            result.Add(part);
        }

        return new PyGenerator(result, "sync_do_slice");
    }

    private static object? Batch(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("batch", ["linecount", "fill_with"], 1);
        var count = (int)PyOps.ToIndex(b[0]);
        var fill = Or(b[1], null);
        var result = new List<object?>();
        var current = new List<object?>();
        foreach (var item in PyOps.Iterate(value))
        {
            if (current.Count == count)
            {
                result.Add(current);
                current = [];
            }

            current.Add(item);
        }

        if (current.Count > 0)
        {
            while (fill is not null && current.Count < count)
            {
                current.Add(fill);
            }

            result.Add(current);
        }

        return new PyGenerator(result, "do_batch");
    }

    private static object? Sum(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("sum", ["attribute", "start"]);
        var items = PyOps.Iterate(value);
        if (b[0] != CallArguments.Missing && b[0] is not null)
        {
            items = items.Select(AttributeGetter(b[0])).ToList();
        }

        var total = Or(b[1], 0L);
        if (total is string)
        {
            throw TemplateError.Type("sum() can't sum strings [use ''.join(seq) instead]");
        }

        foreach (var item in items)
        {
            total = PyOps.Add(total, item);
        }

        return total;
    }

    private static string StripTags(string s)
    {
        var text = TagRegex().Replace(s, string.Empty);
        text = string.Join(' ', PyStrings.Split(text, null, -1, fromRight: false).Select(x => (string)x!));
        return text.Replace("&lt;", "<", StringComparison.Ordinal).Replace("&gt;", ">", StringComparison.Ordinal).Replace("&#34;", "\"", StringComparison.Ordinal)
            .Replace("&#39;", "'", StringComparison.Ordinal).Replace("&quot;", "\"", StringComparison.Ordinal).Replace("&amp;", "&", StringComparison.Ordinal);
    }

    /// <summary>jinja2's <c>title</c> filter: words start after <c>-</c>, whitespace and opening brackets.</summary>
    private static string Title(string s)
    {
        var parts = WordBeginningRegex().Split(s);
        var builder = new StringBuilder();
        foreach (var part in parts)
        {
            if (part.Length > 0)
            {
                builder.Append(char.ToUpperInvariant(part[0])).Append(part[1..].ToLowerInvariant());
            }
        }

        return builder.ToString();
    }

    private static string ToJson(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("tojson", ["ensure_ascii", "indent", "separators", "sort_keys"]);
        return PyJson.Dumps(
            value,
            indent: Or(b[1], null),
            ensureAscii: b[0] != CallArguments.Missing && PyOps.Truthy(b[0]),
            sortKeys: Flag(b[3]),
            separators: Or(b[2], null) switch
            {
                PyTuple t => t,
                List<object?> l => new PyTuple(l),
                _ => null,
            });
    }

    private static string Truncate(object? value, CallArguments arguments)
    {
        var b = arguments.Bind("truncate", ["length", "killwords", "end", "leeway"]);
        var s = PyText.Str(value);
        var length = (int)PyOps.ToIndex(Or(b[0], 255L));
        var end = PyText.Str(Or(b[2], "..."));
        var leeway = b[3] == CallArguments.Missing || b[3] is null ? 5 : (int)PyOps.ToIndex(b[3]);
        if (length < end.Length)
        {
            throw new TemplateError("AssertionError", $"expected length >= {end.Length}, got {length}");
        }

        if (PyStrings.Length(s) <= length + leeway)
        {
            return s;
        }

        var head = PyStrings.Substring(s, 0, length - end.Length);
        if (Flag(b[1]))
        {
            return head + end;
        }

        var space = head.LastIndexOf(' ');
        return (space >= 0 ? head[..space] : head) + end;
    }

    [GeneratedRegex(@"\w+")]
    private static partial Regex WordRegex();

    [GeneratedRegex(@"(<!--.*?-->|<[^>]*>)", RegexOptions.Singleline)]
    private static partial Regex TagRegex();

    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginningRegex();
}
