using System.Text;

namespace DistributedInference.Models.Templates;

/// <summary>
/// Python's operators on template values: truthiness, <c>==</c> (dicts by content, <c>1 == 1.0 == True</c>), ordering,
/// arithmetic (<c>/</c> is true division, <c>//</c> and <c>%</c> floor toward negative infinity, <c>+</c> joins strings and
/// lists), <c>in</c> (keys of a dict, substrings of a string), <c>len</c>, iteration, indexing and slicing, with the
/// messages CPython gives when a type does not support an operation. Values are <c>null</c> (None), <c>bool</c>,
/// <c>long</c> (int), <c>double</c> (float), <c>string</c>, <c>List&lt;object?&gt;</c> (list), <see cref="PyTuple"/>,
/// <see cref="PyDict"/> and the runtime's own objects.
/// </summary>
internal static class PyOps
{
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        PyTuple => "tuple",
        PyDict => "dict",
        Undefined => "Undefined",
        TemplateNamespace => "Namespace",
        LoopContext => "LoopContext",
        PyGenerator => "generator",
        Macro => "Macro",
        BoundMethod => "builtin_function_or_method",
        ITemplateCallable => "function",
        _ => value.GetType().Name,
    };

    /// <summary>jinja2's <c>object_type_repr</c>: <c>None</c>, or <c>dict object</c>.</summary>
    public static string ObjectTypeRepr(object? value) => value is null ? "None" : value switch
    {
        Undefined => "jinja2.runtime.Undefined object",
        TemplateNamespace => "jinja2.utils.Namespace object",
        LoopContext => "jinja2.runtime.LoopContext object",
        Macro => "jinja2.runtime.Macro object",
        _ => TypeName(value) + " object",
    };

    public static bool Truthy(object? value) => value switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        PyTuple tuple => tuple.Count > 0,
        PyDict dict => dict.Count > 0,
        Undefined => false,
        _ => true,
    };

    private static bool IsNumber(object? value) => value is bool or long or double;

    private static bool IsInteger(object? value) => value is bool or long;

    private static long AsLong(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        _ => throw new InvalidOperationException("not an integer"),
    };

    private static double AsDouble(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => d,
        _ => throw new InvalidOperationException("not a number"),
    };

    /// <summary>Python's <c>==</c>.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined)
        {
            return a is Undefined && b is Undefined;
        }

        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            if (IsInteger(a) && IsInteger(b))
            {
                return AsLong(a) == AsLong(b);
            }

            return AsDouble(a) == AsDouble(b);
        }

        switch (a)
        {
            case string sa:
                return b is string sb && string.Equals(sa, sb, StringComparison.Ordinal);
            case List<object?> la:
                return b is List<object?> lb && SequenceEqual(la, lb);
            case PyTuple ta:
                return b is PyTuple tb && SequenceEqual(ta.Items, tb.Items);
            case PyDict da:
                if (b is not PyDict db || da.Count != db.Count)
                {
                    return false;
                }

                foreach (var (key, value) in da.Items)
                {
                    if (!db.TryGet(key, out var other) || !Equal(value, other))
                    {
                        return false;
                    }
                }

                return true;
            default:
                return ReferenceEquals(a, b);
        }
    }

    private static bool SequenceEqual(IReadOnlyList<object?> a, IReadOnlyList<object?> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Count; i++)
        {
            if (!Equal(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Python's ordering (<c>&lt;</c> and friends): numbers, strings by code point, lists and tuples item by item.</summary>
    /// <returns>Negative, zero or positive.</returns>
    public static int Compare(object? a, object? b, string op)
    {
        if (a is Undefined ua)
        {
            throw ua.Fail();
        }

        if (b is Undefined ub)
        {
            throw ub.Fail();
        }

        if (IsNumber(a) && IsNumber(b))
        {
            if (IsInteger(a) && IsInteger(b))
            {
                return AsLong(a).CompareTo(AsLong(b));
            }

            var x = AsDouble(a);
            var y = AsDouble(b);
            return x < y ? -1 : x > y ? 1 : x == y ? 0 : NaNOrder(op);
        }

        switch (a)
        {
            case string sa when b is string sb:
                return CompareCodePoints(sa, sb);
            case List<object?> la when b is List<object?> lb:
                return CompareSequences(la, lb, op);
            case PyTuple ta when b is PyTuple tb:
                return CompareSequences(ta.Items, tb.Items, op);
        }

        throw TemplateError.Type($"{PyText.Repr(op)} not supported between instances of {PyText.Repr(TypeName(a))} and {PyText.Repr(TypeName(b))}");
    }

    // Every comparison with NaN is false: answer so the caller's operator test fails.
    private static int NaNOrder(string op) => op is "<" or "<=" ? 1 : -1;

    private static int CompareSequences(IReadOnlyList<object?> a, IReadOnlyList<object?> b, string op)
    {
        for (var i = 0; i < Math.Min(a.Count, b.Count); i++)
        {
            if (!Equal(a[i], b[i]))
            {
                return Compare(a[i], b[i], op);
            }
        }

        return a.Count.CompareTo(b.Count);
    }

    public static int CompareCodePoints(string a, string b)
    {
        var ea = a.EnumerateRunes();
        var eb = b.EnumerateRunes();
        while (true)
        {
            var hasA = ea.MoveNext();
            var hasB = eb.MoveNext();
            if (!hasA || !hasB)
            {
                return hasA ? 1 : hasB ? -1 : 0;
            }

            var c = ea.Current.Value.CompareTo(eb.Current.Value);
            if (c != 0)
            {
                return c;
            }
        }
    }

    private static TemplateError Unsupported(string op, object? a, object? b) =>
        TemplateError.Type($"unsupported operand type(s) for {op}: {PyText.Repr(TypeName(a))} and {PyText.Repr(TypeName(b))}");

    private static void CheckDefined(object? a, object? b)
    {
        if (a is Undefined ua)
        {
            throw ua.Fail();
        }

        if (b is Undefined ub)
        {
            throw ub.Fail();
        }
    }

    public static object? Add(object? a, object? b)
    {
        CheckDefined(a, b);
        if (IsNumber(a) && IsNumber(b))
        {
            return IsInteger(a) && IsInteger(b) ? (object)Checked(() => checked(AsLong(a) + AsLong(b))) : AsDouble(a) + AsDouble(b);
        }

        switch (a)
        {
            case string sa:
                return b is string sb ? Bounded(sa.Length + (long)sb.Length, "+") ? sa + sb : null : throw TemplateError.Type($"can only concatenate str (not \"{TypeName(b)}\") to str");
            case List<object?> la:
                return b is List<object?> lb ? Bounded(la.Count + (long)lb.Count, "+") ? new List<object?>([.. la, .. lb]) : null : throw TemplateError.Type($"can only concatenate list (not \"{TypeName(b)}\") to list");
            case PyTuple ta:
                return b is PyTuple tb ? new PyTuple([.. ta.Items, .. tb.Items]) : throw TemplateError.Type($"can only concatenate tuple (not \"{TypeName(b)}\") to tuple");
        }

        throw Unsupported("+", a, b);
    }

    public static object? Subtract(object? a, object? b)
    {
        CheckDefined(a, b);
        if (IsNumber(a) && IsNumber(b))
        {
            return IsInteger(a) && IsInteger(b) ? (object)Checked(() => checked(AsLong(a) - AsLong(b))) : AsDouble(a) - AsDouble(b);
        }

        throw Unsupported("-", a, b);
    }

    public static object? Multiply(object? a, object? b)
    {
        CheckDefined(a, b);
        if (IsNumber(a) && IsNumber(b))
        {
            return IsInteger(a) && IsInteger(b) ? (object)Checked(() => checked(AsLong(a) * AsLong(b))) : AsDouble(a) * AsDouble(b);
        }

        if (IsInteger(b) && a is string or List<object?> or PyTuple)
        {
            return Repeat(a, AsLong(b));
        }

        if (IsInteger(a) && b is string or List<object?> or PyTuple)
        {
            return Repeat(b, AsLong(a));
        }

        throw Unsupported("*", a, b);
    }

    private static bool Bounded(long length, string op) => length <= TemplateRenderOptions.MaxSequenceLength
        ? true
        : throw TemplateError.Security($"the result of {op} would hold {length} items, more than the sandbox allows ({TemplateRenderOptions.MaxSequenceLength})");

    private static object Repeat(object? sequence, long count)
    {
        count = Math.Max(count, 0);
        var length = Length(sequence);
        Bounded(count > 0 && length > TemplateRenderOptions.MaxSequenceLength / count ? long.MaxValue : length * count, "*");

        return sequence switch
        {
            string s => string.Concat(Enumerable.Repeat(s, (int)count)),
            List<object?> l => Enumerable.Repeat(l, (int)count).SelectMany(x => x).ToList(),
            PyTuple t => new PyTuple(Enumerable.Repeat(t.Items, (int)count).SelectMany(x => x).ToList()),
            _ => throw new InvalidOperationException(),
        };
    }

    public static object? Divide(object? a, object? b)
    {
        CheckDefined(a, b);
        if (IsNumber(a) && IsNumber(b))
        {
            var y = AsDouble(b);
            if (y == 0)
            {
                throw new TemplateError("ZeroDivisionError", "division by zero");
            }

            return AsDouble(a) / y;
        }

        throw Unsupported("/", a, b);
    }

    public static object? FloorDivide(object? a, object? b)
    {
        CheckDefined(a, b);
        if (IsInteger(a) && IsInteger(b))
        {
            var y = AsLong(b);
            if (y == 0)
            {
                throw new TemplateError("ZeroDivisionError", "integer division or modulo by zero");
            }

            var x = AsLong(a);
            var q = x / y;
            return (x % y != 0) && ((x < 0) != (y < 0)) ? q - 1 : q;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            var y = AsDouble(b);
            if (y == 0)
            {
                throw new TemplateError("ZeroDivisionError", "float floor division by zero");
            }

            return Math.Floor(AsDouble(a) / y);
        }

        throw Unsupported("//", a, b);
    }

    public static object? Modulo(object? a, object? b)
    {
        CheckDefined(a, b);
        if (a is string format)
        {
            return PyFormat.Printf(format, b);
        }

        if (IsInteger(a) && IsInteger(b))
        {
            var y = AsLong(b);
            if (y == 0)
            {
                throw new TemplateError("ZeroDivisionError", "integer division or modulo by zero");
            }

            var r = AsLong(a) % y;
            return r != 0 && ((r < 0) != (y < 0)) ? r + y : r;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            var y = AsDouble(b);
            if (y == 0)
            {
                throw new TemplateError("ZeroDivisionError", "float modulo");
            }

            var r = AsDouble(a) % y;
            return r != 0 ? ((r < 0) != (y < 0) ? r + y : r) : Math.CopySign(0.0, y);
        }

        throw Unsupported("%", a, b);
    }

    public static object? Power(object? a, object? b)
    {
        CheckDefined(a, b);
        if (IsInteger(a) && IsInteger(b) && AsLong(b) >= 0)
        {
            var result = 1L;
            var x = AsLong(a);
            for (var e = AsLong(b); e > 0; e--)
            {
                result = Checked(() => checked(result * x));
                if (result == 0 || result == 1)
                {
                    break;
                }
            }

            return result;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            return Math.Pow(AsDouble(a), AsDouble(b));
        }

        throw Unsupported("** or pow()", a, b);
    }

    public static object? Negate(object? a) => a switch
    {
        Undefined u => throw u.Fail(),
        bool or long => (object)Checked(() => checked(-AsLong(a))),
        double d => -d,
        _ => throw TemplateError.Type($"bad operand type for unary -: {PyText.Repr(TypeName(a))}"),
    };

    public static object? Plus(object? a) => a switch
    {
        Undefined u => throw u.Fail(),
        bool or long => (object)AsLong(a),
        double d => d,
        _ => throw TemplateError.Type($"bad operand type for unary +: {PyText.Repr(TypeName(a))}"),
    };

    private static long Checked(Func<long> operation)
    {
        try
        {
            return operation();
        }
        catch (OverflowException)
        {
            throw new TemplateError("OverflowError", "integer result does not fit in 64 bits");
        }
    }

    /// <summary>Python's <c>item in container</c>.</summary>
    public static bool Contains(object? container, object? item)
    {
        switch (container)
        {
            case string s:
                return item is string sub
                    ? s.Contains(sub, StringComparison.Ordinal)
                    : item is Undefined u ? throw u.Fail() : throw TemplateError.Type($"'in <string>' requires string as left operand, not {TypeName(item)}");
            case PyDict dict:
                return dict.ContainsKey(item is Undefined ? throw TemplateError.Type("unhashable type: 'Undefined'") : item);
            case Undefined:
                return false;
            case List<object?> or PyTuple or PyGenerator or LoopContext:
                return Iterate(container).Any(x => Equal(x, item));
            default:
                throw TemplateError.Type($"argument of type {PyText.Repr(TypeName(container))} is not iterable");
        }
    }

    /// <summary>Python's <c>len(value)</c>.</summary>
    public static long Length(object? value) => value switch
    {
        string s => PyStrings.Length(s),
        List<object?> list => list.Count,
        PyTuple tuple => tuple.Count,
        PyDict dict => dict.Count,
        Undefined => 0,
        TemplateNamespace => throw TemplateError.Type("object of type 'Namespace' has no len()"),
        LoopContext loop => loop.Length,
        _ => throw TemplateError.Type($"object of type {PyText.Repr(TypeName(value))} has no len()"),
    };

    /// <summary>Python's <c>iter(value)</c>: a dict's keys, a string's characters; an undefined value is empty.</summary>
    public static IEnumerable<object?> Iterate(object? value) => value switch
    {
        List<object?> list => list,
        PyTuple tuple => tuple.Items,
        PyDict dict => dict.Keys,
        string s => PyStrings.Characters(s),
        Undefined => [],
        PyGenerator generator => generator.Consume(),
        LoopContext loop => loop.Items,
        _ => throw TemplateError.Type($"{PyText.Repr(TypeName(value))} object is not iterable"),
    };

    public static bool IsIterable(object? value) => value is List<object?> or PyTuple or PyDict or string or Undefined or PyGenerator or LoopContext;

    /// <summary>An integer argument (an index, a count): int or bool.</summary>
    public static long ToIndex(object? value) => value switch
    {
        bool or long => AsLong(value),
        Undefined u => throw u.Fail(),
        _ => throw TemplateError.Type($"{PyText.Repr(TypeName(value))} object cannot be interpreted as an integer"),
    };

    /// <summary>Python's <c>obj[key]</c> for built-in values: <c>Missing</c> when Python raises a lookup or type error
    /// (the sandbox then tries the attribute, and then gives an undefined).</summary>
    public static object? SubscriptOrMissing(object? obj, object? key)
    {
        switch (obj)
        {
            case PyDict dict:
                if (key is List<object?> or PyDict)
                {
                    return CallArguments.Missing;
                }

                return dict.TryGet(key, out var value) ? value : CallArguments.Missing;
            case List<object?> or PyTuple or string when key is PySlice slice:
                return Slice(obj, slice);
            case List<object?> list when IsInteger(key):
                return Index(list, AsLong(key), out var item) ? item : CallArguments.Missing;
            case PyTuple tuple when IsInteger(key):
                return Index(tuple.Items, AsLong(key), out var element) ? element : CallArguments.Missing;
            case string s when IsInteger(key):
                var length = PyStrings.Length(s);
                var i = AsLong(key);
                if (i < 0)
                {
                    i += length;
                }

                return i >= 0 && i < length ? PyStrings.Substring(s, (int)i, (int)i + 1) : CallArguments.Missing;
            default:
                return CallArguments.Missing;
        }
    }

    private static bool Index(IReadOnlyList<object?> items, long index, out object? item)
    {
        if (index < 0)
        {
            index += items.Count;
        }

        item = index >= 0 && index < items.Count ? items[(int)index] : null;
        return index >= 0 && index < items.Count;
    }

    /// <summary>Python's <c>seq[start:stop:step]</c>.</summary>
    public static object? Slice(object? sequence, PySlice slice)
    {
        var length = sequence switch
        {
            string s => PyStrings.Length(s),
            List<object?> l => l.Count,
            PyTuple t => t.Count,
            _ => throw TemplateError.Type($"{PyText.Repr(TypeName(sequence))} object is not subscriptable"),
        };
        var step = slice.Step is null ? 1 : ToIndex(slice.Step);
        if (step == 0)
        {
            throw TemplateError.Value("slice step cannot be zero");
        }

        long Bound(object? value, long whenNone, long lower, long upper)
        {
            if (value is null)
            {
                return whenNone;
            }

            var v = ToIndex(value);
            if (v < 0)
            {
                v += length;
            }

            return Math.Clamp(v, lower, upper);
        }

        var (start, stop) = step > 0
            ? (Bound(slice.Start, 0, 0, length), Bound(slice.Stop, length, 0, length))
            : (Bound(slice.Start, length - 1, -1, length - 1), Bound(slice.Stop, -1, -1, length - 1));
        var indexes = new List<int>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            indexes.Add((int)i);
        }

        switch (sequence)
        {
            case string s:
                if (step == 1)
                {
                    return PyStrings.Substring(s, (int)start, (int)Math.Max(start, stop));
                }

                var characters = PyStrings.Characters(s);
                var builder = new StringBuilder();
                foreach (var i in indexes)
                {
                    builder.Append(characters[i]);
                }

                return builder.ToString();
            case List<object?> l:
                return indexes.Select(i => l[i]).ToList();
            case PyTuple t:
                return new PyTuple(indexes.Select(i => t.Items[i]).ToList());
            default:
                throw new InvalidOperationException();
        }
    }
}

/// <summary>A Python <c>slice(start, stop, step)</c>, the key of <c>seq[a:b:c]</c>.</summary>
internal sealed record PySlice(object? Start, object? Stop, object? Step);
