using System.Text;

namespace DistributedInference.Models.Templates;

/// <summary>
/// The attributes and methods of built-in values a template can reach: <c>str</c> methods with their arguments
/// (<c>split</c>, <c>strip(chars)</c>, <c>startswith</c>, <c>replace</c>, <c>format</c>, ...), <c>dict.items/keys/values/get</c>,
/// <c>list.index/count</c>, a namespace's attributes and the loop's. The immutable sandbox refuses the methods that
/// change a dict or list (<c>append</c>, <c>update</c>, ...) as jinja2's <c>modifies_known_mutable</c> lists them.
/// </summary>
internal static class PyMethods
{
    private static readonly HashSet<string> StrMethods =
    [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map", "index",
        "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace",
        "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix", "removesuffix",
        "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "swapcase", "title", "translate", "upper", "zfill",
    ];

    private static readonly HashSet<string> DictMethods = ["clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values"];

    private static readonly HashSet<string> ListMethods = ["append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort"];

    private static readonly HashSet<string> UnsafeDictMethods = ["clear", "pop", "popitem", "setdefault", "update"];

    private static readonly HashSet<string> UnsafeListMethods = ["append", "reverse", "insert", "sort", "extend", "remove"];

    /// <summary>Python's <c>getattr(obj, name)</c> for template values, or <see cref="CallArguments.Missing"/>.</summary>
    public static object? GetAttribute(object? obj, string name) => obj switch
    {
        string when StrMethods.Contains(name) => new BoundMethod(obj, name),
        PyDict when DictMethods.Contains(name) => new BoundMethod(obj, name),
        List<object?> when ListMethods.Contains(name) => new BoundMethod(obj, name),
        PyTuple when name is "count" or "index" => new BoundMethod(obj, name),
        PyTuple { FieldNames: { } names } tuple when names.Contains(name) => tuple.Items[names.ToList().IndexOf(name)],
        TemplateNamespace ns => ns.Attributes.TryGet(name, out var value) ? value : CallArguments.Missing,
        LoopContext loop => loop.Attribute(name),
        Macro macro when name == "name" => macro.Name,
        double d when name is "real" => d,
        double when name is "is_integer" => new BoundMethod(obj, name),
        long l when name is "real" or "numerator" => l,
        long when name is "imag" => 0L,
        long when name is "denominator" => 1L,
        _ => CallArguments.Missing,
    };

    /// <summary>jinja2's <c>ImmutableSandboxedEnvironment.is_safe_attribute</c>.</summary>
    public static bool IsSafe(object? obj, string name) => !name.StartsWith('_') && obj switch
    {
        PyDict => !UnsafeDictMethods.Contains(name),
        List<object?> => !UnsafeListMethods.Contains(name),
        _ => true,
    };

    public static object? Call(TemplateRenderer renderer, object? target, string name, CallArguments arguments) => target switch
    {
        string s => CallStr(renderer, s, name, arguments),
        PyDict d => CallDict(d, name, arguments),
        List<object?> l => CallList(l, name, arguments),
        PyTuple t => CallSequence(t.Items, "tuple", name, arguments),
        double d when name == "is_integer" => double.IsFinite(d) && Math.Floor(d) == d,
        _ => throw TemplateError.Type($"{PyText.Repr(PyOps.TypeName(target))} object has no attribute {PyText.Repr(name)}"),
    };

    private static string Str(object? value, string method, string what = "argument")
    {
        return value switch
        {
            string s => s,
            Undefined u => throw u.Fail(),
            _ => throw TemplateError.Type($"{method}() {what} must be str, not {PyOps.TypeName(value)}"),
        };
    }

    private static string? OptionalStr(object? value, string method)
    {
        return value == CallArguments.Missing || value is null ? null : value is string s ? s
            : throw TemplateError.Type($"{method} arg must be None or str");
    }

    private static long Int(object? value, long whenMissing) => value == CallArguments.Missing ? whenMissing : PyOps.ToIndex(value);

    private static object? CallStr(TemplateRenderer renderer, string s, string name, CallArguments arguments)
    {
        object?[] a;
        switch (name)
        {
            case "upper":
                arguments.Bind(name, []);
                return s.ToUpperInvariant();
            case "lower" or "casefold":
                arguments.Bind(name, []);
                return s.ToLowerInvariant();
            case "title":
                arguments.Bind(name, []);
                return PyStrings.Title(s);
            case "capitalize":
                arguments.Bind(name, []);
                return PyStrings.Capitalize(s);
            case "swapcase":
                arguments.Bind(name, []);
                return string.Concat(s.Select(c => char.IsUpper(c) ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c)));
            case "strip" or "lstrip" or "rstrip":
                a = arguments.Bind(name, ["chars"]);
                return PyStrings.Strip(s, OptionalStr(a[0], name), left: name != "rstrip", right: name != "lstrip");
            case "split" or "rsplit":
                a = arguments.Bind(name, ["sep", "maxsplit"]);
                return PyStrings.Split(s, OptionalStr(a[0], name), Int(a[1], -1), fromRight: name == "rsplit");
            case "splitlines":
                a = arguments.Bind(name, ["keepends"]);
                return PyStrings.SplitLines(s, a[0] != CallArguments.Missing && PyOps.Truthy(a[0]));
            case "startswith" or "endswith":
                {
                    a = arguments.Bind(name, ["prefix", "start", "end"], required: 1);
                    var (start, end) = PyStrings.Range(s, a[1], a[2]);
                    var window = PyStrings.Substring(s, start, end);
                    var candidates = a[0] is PyTuple tuple ? tuple.Items : [a[0]];
                    if (start > PyStrings.Length(s))
                    {
                        return false;
                    }

                    return candidates.Any(c =>
                    {
                        var affix = c as string ?? throw TemplateError.Type($"{name} first arg must be str or a tuple of str, not {PyOps.TypeName(c)}");
                        return name == "startswith" ? window.StartsWith(affix, StringComparison.Ordinal) : window.EndsWith(affix, StringComparison.Ordinal);
                    });
                }

            case "find" or "rfind" or "index" or "rindex" or "count":
                {
                    a = arguments.Bind(name, ["sub", "start", "end"], required: 1);
                    var sub = Str(a[0], name, "argument");
                    var (start, end) = PyStrings.Range(s, a[1], a[2]);
                    var window = PyStrings.Substring(s, start, end);
                    if (name == "count")
                    {
                        if (end < start)
                        {
                            return 0L;
                        }

                        if (sub.Length == 0)
                        {
                            return (long)PyStrings.Length(window) + 1;
                        }

                        long count = 0;
                        for (var i = window.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = window.IndexOf(sub, i + sub.Length, StringComparison.Ordinal))
                        {
                            count++;
                        }

                        return count;
                    }

                    var found = end < start ? -1 : name is "find" or "index" ? window.IndexOf(sub, StringComparison.Ordinal) : window.LastIndexOf(sub, StringComparison.Ordinal);
                    if (found < 0)
                    {
                        return name is "index" or "rindex" ? throw TemplateError.Value("substring not found") : -1L;
                    }

                    return (long)(start + PyStrings.CodePointIndex(window, found));
                }

            case "replace":
                {
                    a = arguments.Bind(name, ["old", "new", "count"], required: 2);
                    return Replace(s, Str(a[0], name), Str(a[1], name), Int(a[2], -1));
                }

            case "join":
                {
                    a = arguments.Bind(name, ["iterable"], required: 1);
                    var items = PyOps.Iterate(a[0]).Select((item, i) => item as string
                        ?? throw TemplateError.Type($"sequence item {i}: expected str instance, {PyOps.TypeName(item)} found")).ToList();
                    return string.Join(s, items);
                }

            case "center" or "ljust" or "rjust":
                {
                    a = arguments.Bind(name, ["width", "fillchar"], required: 1);
                    var fill = a[1] == CallArguments.Missing ? " " : Str(a[1], name);
                    if (PyStrings.Length(fill) != 1)
                    {
                        throw TemplateError.Type("The fill character must be exactly one character long");
                    }

                    return PyStrings.Pad(s, PyOps.ToIndex(a[0]), fill, name == "center" ? 0 : name == "ljust" ? -1 : 1);
                }

            case "zfill":
                a = arguments.Bind(name, ["width"], required: 1);
                return PyStrings.ZFill(s, PyOps.ToIndex(a[0]));
            case "partition" or "rpartition":
                {
                    a = arguments.Bind(name, ["sep"], required: 1);
                    var sep = Str(a[0], name);
                    if (sep.Length == 0)
                    {
                        throw TemplateError.Value("empty separator");
                    }

                    var i = name == "partition" ? s.IndexOf(sep, StringComparison.Ordinal) : s.LastIndexOf(sep, StringComparison.Ordinal);
                    if (i < 0)
                    {
                        return name == "partition" ? new PyTuple([s, string.Empty, string.Empty]) : new PyTuple([string.Empty, string.Empty, s]);
                    }

                    return new PyTuple([s[..i], sep, s[(i + sep.Length)..]]);
                }

            case "removeprefix":
                {
                    a = arguments.Bind(name, ["prefix"], required: 1);
                    var prefix = Str(a[0], name);
                    return s.StartsWith(prefix, StringComparison.Ordinal) ? s[prefix.Length..] : s;
                }

            case "removesuffix":
                {
                    a = arguments.Bind(name, ["suffix"], required: 1);
                    var suffix = Str(a[0], name);
                    return suffix.Length > 0 && s.EndsWith(suffix, StringComparison.Ordinal) ? s[..^suffix.Length] : s;
                }

            case "expandtabs":
                {
                    a = arguments.Bind(name, ["tabsize"]);
                    var size = (int)Int(a[0], 8);
                    var builder = new StringBuilder();
                    var column = 0;
                    foreach (var c in s)
                    {
                        if (c == '\t')
                        {
                            var spaces = size > 0 ? size - (column % size) : 0;
                            builder.Append(' ', spaces);
                            column += spaces;
                        }
                        else
                        {
                            builder.Append(c);
                            column = c is '\n' or '\r' ? 0 : column + 1;
                        }
                    }

                    return builder.ToString();
                }

            case "isalnum":
                return s.Length > 0 && s.All(char.IsLetterOrDigit);
            case "isalpha":
                return s.Length > 0 && s.All(char.IsLetter);
            case "isascii":
                return s.All(char.IsAscii);
            case "isdecimal" or "isdigit":
                return s.Length > 0 && s.All(char.IsDigit);
            case "isnumeric":
                return s.Length > 0 && s.All(char.IsNumber);
            case "isspace":
                return s.Length > 0 && s.All(PyStrings.IsSpace);
            case "islower":
                return s.Any(char.IsLower) && !s.Any(c => char.IsUpper(c));
            case "isupper":
                return s.Any(char.IsUpper) && !s.Any(c => char.IsLower(c));
            case "istitle":
                return s.Length > 0 && PyStrings.Title(s) == s && s.Any(char.IsLetter);
            case "isidentifier":
                return s.Length > 0 && PyStrings.IsIdentifierStart(s[0]) && s.All(PyStrings.IsIdentifierPart);
            case "isprintable":
                return s.EnumerateRunes().All(PyText.IsPrintable);
            case "format":
                return PyFormat.Format(renderer, s, arguments);
            case "format_map":
                a = arguments.Bind(name, ["mapping"], required: 1);
                return PyFormat.Format(renderer, s, new CallArguments([], (a[0] as PyDict ?? throw TemplateError.Type("format_map() argument must be a mapping")).Items
                    .Select(p => new KeyValuePair<string, object?>(PyText.Str(p.Key), p.Value)).ToList()));
            default:
                throw TemplateError.Security($"str.{name} is not available in the sandbox");
        }
    }

    private static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0)
        {
            count = long.MaxValue;
        }

        if (old.Length == 0)
        {
            var characters = PyStrings.Characters(s);
            var builder = new StringBuilder();
            long done = 0;
            foreach (var c in characters)
            {
                if (done++ < count)
                {
                    builder.Append(replacement);
                }

                builder.Append(c);
            }

            if (done < count)
            {
                builder.Append(replacement);
            }

            return builder.ToString();
        }

        var result = new StringBuilder();
        var position = 0;
        long replaced = 0;
        while (replaced < count)
        {
            var found = s.IndexOf(old, position, StringComparison.Ordinal);
            if (found < 0)
            {
                break;
            }

            result.Append(s, position, found - position).Append(replacement);
            position = found + old.Length;
            replaced++;
        }

        return result.Append(s, position, s.Length - position).ToString();
    }

    private static object? CallDict(PyDict d, string name, CallArguments arguments)
    {
        object?[] a;
        switch (name)
        {
            case "items":
                arguments.Bind(name, []);
                return d.Items.Select(p => (object?)new PyTuple([p.Key, p.Value])).ToList();
            case "keys":
                arguments.Bind(name, []);
                return d.Keys.ToList();
            case "values":
                arguments.Bind(name, []);
                return d.Values.ToList();
            case "get":
                a = arguments.Bind(name, ["key", "default"], required: 1);
                return d.TryGet(a[0], out var value) ? value : a[1] == CallArguments.Missing ? null : a[1];
            case "copy":
                arguments.Bind(name, []);
                return d.Copy();
            case "fromkeys":
                {
                    a = arguments.Bind(name, ["iterable", "value"], required: 1);
                    var result = new PyDict();
                    foreach (var key in PyOps.Iterate(a[0]))
                    {
                        result.Set(key, a[1] == CallArguments.Missing ? null : a[1]);
                    }

                    return result;
                }

            default:
                throw TemplateError.Security($"dict.{name} is not available in the sandbox");
        }
    }

    private static object? CallList(List<object?> list, string name, CallArguments arguments)
    {
        switch (name)
        {
            case "copy":
                arguments.Bind(name, []);
                return list.ToList();
            case "pop":
                {
                    // jinja2's immutable sandbox lets pop and clear through (they are not in modifies_known_mutable).
                    var a = arguments.Bind(name, ["index"]);
                    if (list.Count == 0)
                    {
                        throw new TemplateError("IndexError", "pop from empty list");
                    }

                    var index = Int(a[0], -1);
                    if (index < 0)
                    {
                        index += list.Count;
                    }

                    if (index < 0 || index >= list.Count)
                    {
                        throw new TemplateError("IndexError", "pop index out of range");
                    }

                    var item = list[(int)index];
                    list.RemoveAt((int)index);
                    return item;
                }

            case "clear":
                arguments.Bind(name, []);
                list.Clear();
                return null;
            default:
                return CallSequence(list, "list", name, arguments);
        }
    }

    private static object? CallSequence(IReadOnlyList<object?> items, string type, string name, CallArguments arguments)
    {
        switch (name)
        {
            case "count":
                {
                    var a = arguments.Bind(name, ["value"], required: 1);
                    return (long)items.Count(x => PyOps.Equal(x, a[0]));
                }

            case "index":
                {
                    var a = arguments.Bind(name, ["value", "start", "stop"], required: 1);
                    var start = (int)Math.Clamp(Int(a[1], 0) < 0 ? Int(a[1], 0) + items.Count : Int(a[1], 0), 0, items.Count);
                    var stop = (int)Math.Clamp(Int(a[2], items.Count) < 0 ? Int(a[2], items.Count) + items.Count : Int(a[2], items.Count), 0, items.Count);
                    for (var i = start; i < stop; i++)
                    {
                        if (PyOps.Equal(items[i], a[0]))
                        {
                            return (long)i;
                        }
                    }

                    throw TemplateError.Value($"{PyText.Repr(a[0])} is not in {type}");
                }

            default:
                throw TemplateError.Security($"{type}.{name} is not available in the sandbox");
        }
    }
}
