using System.Globalization;
using System.Text;

namespace DistributedInference.Models.Templates;

/// <summary>
/// Python's string formatting as templates reach it: <c>"%s, %d" % (a, b)</c> and the <c>format</c> filter
/// (printf-style), and <c>"{} {name}".format(...)</c> (jinja2's sandboxed formatter: fields read attributes and items
/// through the sandbox). Conversions <c>s r a d i u f F e E g G x X o c %</c>, flags, width and precision; format specs
/// with fill, alignment, sign, zero padding, width, <c>,</c>, precision and type.
/// </summary>
internal static class PyFormat
{
    /// <summary>Python's <c>format % values</c>.</summary>
    public static string Printf(string format, object? values)
    {
        var positional = values is PyTuple tuple ? tuple.Items : [values];
        var mapping = values as PyDict;
        var next = 0;
        var usedMapping = false;
        var builder = new StringBuilder();
        object? NextArgument()
        {
            if (next >= positional.Count)
            {
                throw TemplateError.Type("not enough arguments for format string");
            }

            return positional[next++];
        }

        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if (c != '%')
            {
                builder.Append(c);
                continue;
            }

            if (++i >= format.Length)
            {
                throw TemplateError.Value("incomplete format");
            }

            object? argument = CallArguments.Missing;
            if (format[i] == '(')
            {
                var close = format.IndexOf(')', i);
                if (close < 0 || mapping is null)
                {
                    throw TemplateError.Type(mapping is null ? "format requires a mapping" : "incomplete format key");
                }

                var key = format[(i + 1)..close];
                argument = mapping.TryGet(key, out var found) ? found : throw new TemplateError("KeyError", PyText.Repr(key));
                usedMapping = true;
                i = close + 1;
            }

            var flags = string.Empty;
            while (i < format.Length && format[i] is '-' or '+' or ' ' or '#' or '0')
            {
                flags += format[i++];
            }

            int? width = null;
            if (i < format.Length && format[i] == '*')
            {
                width = (int)PyOps.ToIndex(NextArgument());
                i++;
            }
            else
            {
                var start = i;
                while (i < format.Length && char.IsAsciiDigit(format[i]))
                {
                    i++;
                }

                width = i > start ? int.Parse(format[start..i], CultureInfo.InvariantCulture) : null;
            }

            int? precision = null;
            if (i < format.Length && format[i] == '.')
            {
                i++;
                if (i < format.Length && format[i] == '*')
                {
                    precision = (int)PyOps.ToIndex(NextArgument());
                    i++;
                }
                else
                {
                    var start = i;
                    while (i < format.Length && char.IsAsciiDigit(format[i]))
                    {
                        i++;
                    }

                    precision = i > start ? int.Parse(format[start..i], CultureInfo.InvariantCulture) : 0;
                }
            }

            while (i < format.Length && format[i] is 'h' or 'l' or 'L')
            {
                i++;
            }

            if (i >= format.Length)
            {
                throw TemplateError.Value("incomplete format");
            }

            var conversion = format[i];
            if (conversion == '%')
            {
                builder.Append('%');
                continue;
            }

            if (argument == CallArguments.Missing)
            {
                argument = mapping is not null && values is not PyTuple ? mapping : NextArgument();
            }

            var text = Convert(argument, conversion, flags, precision);
            builder.Append(Pad(text, width, flags.Contains('-') ? '<' : '>', flags.Contains('0') && !flags.Contains('-') && conversion is not ('s' or 'r' or 'a' or 'c') ? '0' : ' '));
        }

        if (!usedMapping && mapping is null && next < positional.Count)
        {
            throw TemplateError.Type("not all arguments converted during string formatting");
        }

        return builder.ToString();
    }

    private static string Convert(object? argument, char conversion, string flags, int? precision)
    {
        switch (conversion)
        {
            case 's':
                var s = PyText.Str(argument);
                return precision is { } p && p < PyStrings.Length(s) ? PyStrings.Substring(s, 0, p) : s;
            case 'r' or 'a':
                var r = PyText.Repr(argument);
                return precision is { } q && q < r.Length ? r[..q] : r;
            case 'c':
                return argument is string ch ? ch : char.ConvertFromUtf32((int)PyOps.ToIndex(argument));
            case 'd' or 'i' or 'u':
                return Sign(Integer(argument).ToString(CultureInfo.InvariantCulture), flags);
            case 'x' or 'X' or 'o':
                {
                    var value = Integer(argument);
                    var digits = conversion == 'o' ? System.Convert.ToString(Math.Abs(value), 8) : Math.Abs(value).ToString(conversion == 'x' ? "x" : "X", CultureInfo.InvariantCulture);
                    var prefix = flags.Contains('#') ? (conversion == 'o' ? "0o" : conversion == 'x' ? "0x" : "0X") : string.Empty;
                    return Sign((value < 0 ? "-" : string.Empty) + prefix + digits, flags);
                }

            case 'f' or 'F' or 'e' or 'E' or 'g' or 'G':
                return Sign(FormatFloat(Float(argument), conversion, precision ?? 6, flags.Contains('#')), flags);
            default:
                throw TemplateError.Value($"unsupported format character {PyText.Repr(conversion.ToString())} (0x{(int)conversion:x})");
        }
    }

    private static long Integer(object? value) => value switch
    {
        double d => (long)Math.Truncate(d),
        bool or long => PyOps.ToIndex(value),
        _ => throw TemplateError.Type($"%d format: a real number is required, not {PyOps.TypeName(value)}"),
    };

    private static double Float(object? value) => value switch
    {
        double d => d,
        bool or long => PyOps.ToIndex(value),
        _ => throw TemplateError.Type($"must be real number, not {PyOps.TypeName(value)}"),
    };

    private static string Sign(string text, string flags) =>
        text.StartsWith('-') ? text : flags.Contains('+') ? "+" + text : flags.Contains(' ') ? " " + text : text;

    /// <summary>Python's <c>format(x, '.{precision}{type}')</c> for f, e and g.</summary>
    public static string FormatFloat(double value, char type, int precision, bool alternate = false)
    {
        if (double.IsNaN(value))
        {
            return char.IsUpper(type) ? "NAN" : "nan";
        }

        if (double.IsInfinity(value))
        {
            var inf = char.IsUpper(type) ? "INF" : "inf";
            return value < 0 ? "-" + inf : inf;
        }

        switch (char.ToLowerInvariant(type))
        {
            case 'f':
                return value.ToString("F" + precision, CultureInfo.InvariantCulture);
            case 'e':
                return Exponential(value, precision, char.IsUpper(type));
            default:
                {
                    var p = precision == 0 ? 1 : precision;
                    if (value == 0)
                    {
                        return alternate ? "0." + new string('0', p - 1) : (double.IsNegative(value) ? "-0" : "0");
                    }

                    var exponent = (int)Math.Floor(Math.Log10(Math.Abs(double.Parse(Exponential(value, p - 1, false), CultureInfo.InvariantCulture))));
                    string text;
                    if (exponent < -4 || exponent >= p)
                    {
                        text = Exponential(value, p - 1, char.IsUpper(type));
                        if (!alternate)
                        {
                            var e = text.IndexOfAny(['e', 'E']);
                            var mantissa = text[..e];
                            if (mantissa.Contains('.'))
                            {
                                mantissa = mantissa.TrimEnd('0').TrimEnd('.');
                            }

                            text = mantissa + text[e..];
                        }
                    }
                    else
                    {
                        text = value.ToString("F" + Math.Max(0, p - 1 - exponent), CultureInfo.InvariantCulture);
                        if (!alternate && text.Contains('.'))
                        {
                            text = text.TrimEnd('0').TrimEnd('.');
                        }
                    }

                    return text;
                }
        }
    }

    private static string Exponential(double value, int precision, bool upper)
    {
        var text = value.ToString((upper ? "E" : "e") + precision, CultureInfo.InvariantCulture);
        var e = text.IndexOfAny(['e', 'E']);
        var exponent = int.Parse(text[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        return text[..e] + (upper ? "E" : "e") + (exponent < 0 ? "-" : "+") + Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
    }

    private static string Pad(string text, int? width, char align, char fill)
    {
        var length = PyStrings.Length(text);
        if (width is not { } w || w <= length)
        {
            return text;
        }

        var padding = w - length;
        if (fill == '0' && align is '>' or '=')
        {
            var signLength = text.Length > 0 && text[0] is '-' or '+' or ' ' ? 1 : 0;
            if (text.Length > signLength + 1 && text[signLength] == '0' && text[signLength + 1] is 'x' or 'X' or 'o' or 'b')
            {
                signLength += 2;
            }

            return text[..signLength] + new string('0', padding) + text[signLength..];
        }

        return align switch
        {
            '<' => text + new string(fill, padding),
            '^' => new string(fill, padding / 2) + text + new string(fill, padding - (padding / 2)),
            _ => new string(fill, padding) + text,
        };
    }

    /// <summary>Python's <c>str.format(*args, **kwargs)</c> in jinja2's sandbox.</summary>
    public static string Format(TemplateRenderer renderer, string format, CallArguments arguments)
    {
        var builder = new StringBuilder();
        var automatic = 0;
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if (c == '}')
            {
                if (i + 1 < format.Length && format[i + 1] == '}')
                {
                    builder.Append('}');
                    i++;
                    continue;
                }

                throw TemplateError.Value("Single '}' encountered in format string");
            }

            if (c != '{')
            {
                builder.Append(c);
                continue;
            }

            if (i + 1 < format.Length && format[i + 1] == '{')
            {
                builder.Append('{');
                i++;
                continue;
            }

            var close = format.IndexOf('}', i);
            if (close < 0)
            {
                throw TemplateError.Value("expected '}' before end of string");
            }

            var field = format[(i + 1)..close];
            i = close;
            string? spec = null;
            char? conversion = null;
            var colon = field.IndexOf(':');
            if (colon >= 0)
            {
                spec = field[(colon + 1)..];
                field = field[..colon];
            }

            var bang = field.IndexOf('!');
            if (bang >= 0)
            {
                conversion = bang + 1 < field.Length ? field[bang + 1] : null;
                field = field[..bang];
            }

            var end = field.IndexOfAny(['.', '[']);
            var head = end < 0 ? field : field[..end];
            object? value;
            if (head.Length == 0)
            {
                value = automatic < arguments.Positional.Count ? arguments.Positional[automatic++] : throw new TemplateError("IndexError", $"Replacement index {automatic} out of range for positional args tuple");
            }
            else if (int.TryParse(head, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                value = index < arguments.Positional.Count ? arguments.Positional[index] : throw new TemplateError("IndexError", $"Replacement index {index} out of range for positional args tuple");
            }
            else
            {
                value = arguments.Keywords.Where(k => k.Key == head).Select(k => (object?)k.Value).DefaultIfEmpty(CallArguments.Missing).First();
                if (value == CallArguments.Missing)
                {
                    throw new TemplateError("KeyError", PyText.Repr(head));
                }
            }

            var rest = end < 0 ? string.Empty : field[end..];
            while (rest.Length > 0)
            {
                if (rest[0] == '.')
                {
                    var stop = rest.IndexOfAny(['.', '['], 1);
                    var name = stop < 0 ? rest[1..] : rest[1..stop];
                    value = TemplateRenderer.GetAttribute(value, name);
                    rest = stop < 0 ? string.Empty : rest[stop..];
                }
                else
                {
                    var stop = rest.IndexOf(']');
                    var key = rest[1..stop];
                    value = TemplateRenderer.GetItem(value, int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? (long)k : key);
                    rest = rest[(stop + 1)..];
                }
            }

            value = conversion switch
            {
                'r' or 'a' => PyText.Repr(value),
                's' => PyText.Str(value),
                _ => value,
            };
            builder.Append(FormatSpec(value, spec ?? string.Empty));
        }

        _ = renderer;
        return builder.ToString();
    }

    /// <summary>Python's <c>format(value, spec)</c> for str, int and float.</summary>
    public static string FormatSpec(object? value, string spec)
    {
        if (spec.Length == 0)
        {
            return PyText.Str(value);
        }

        var i = 0;
        char? fill = null;
        char? align = null;
        if (spec.Length >= 2 && spec[1] is '<' or '>' or '^' or '=')
        {
            fill = spec[0];
            align = spec[1];
            i = 2;
        }
        else if (spec[0] is '<' or '>' or '^' or '=')
        {
            align = spec[0];
            i = 1;
        }

        var sign = i < spec.Length && spec[i] is '+' or '-' or ' ' ? spec[i++] : '-';
        var alternate = i < spec.Length && spec[i] == '#' && ++i > 0;
        if (i < spec.Length && spec[i] == '0')
        {
            fill ??= '0';
            align ??= '=';
            i++;
        }

        var start = i;
        while (i < spec.Length && char.IsAsciiDigit(spec[i]))
        {
            i++;
        }

        int? width = i > start ? int.Parse(spec[start..i], CultureInfo.InvariantCulture) : null;
        var grouping = i < spec.Length && spec[i] is ',' or '_' ? spec[i++] : '\0';
        int? precision = null;
        if (i < spec.Length && spec[i] == '.')
        {
            start = ++i;
            while (i < spec.Length && char.IsAsciiDigit(spec[i]))
            {
                i++;
            }

            precision = int.Parse(spec[start..i], CultureInfo.InvariantCulture);
        }

        var type = i < spec.Length ? spec[i] : '\0';
        string text;
        switch (value)
        {
            case string s:
                text = precision is { } p && p < PyStrings.Length(s) ? PyStrings.Substring(s, 0, p) : s;
                align ??= '<';
                break;
            case bool or long when type is '\0' or 'd' or 'x' or 'X' or 'o' or 'b' or 'n':
                {
                    var n = PyOps.ToIndex(value);
                    text = type switch
                    {
                        'x' => Math.Abs(n).ToString("x", CultureInfo.InvariantCulture),
                        'X' => Math.Abs(n).ToString("X", CultureInfo.InvariantCulture),
                        'o' => System.Convert.ToString(Math.Abs(n), 8),
                        'b' => System.Convert.ToString(Math.Abs(n), 2),
                        _ => grouping == ',' ? Math.Abs(n).ToString("#,0", CultureInfo.InvariantCulture) : Math.Abs(n).ToString(CultureInfo.InvariantCulture),
                    };
                    if (alternate && type is 'x' or 'X' or 'o' or 'b')
                    {
                        text = "0" + type + text;
                    }

                    text = (n < 0 ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : string.Empty) + text;
                    align ??= '>';
                    break;
                }

            case bool or long or double:
                {
                    var d = value is double dv ? dv : PyOps.ToIndex(value);
                    text = type switch
                    {
                        'f' or 'F' or 'e' or 'E' or 'g' or 'G' => FormatFloat(d, type, precision ?? 6, alternate),
                        '%' => FormatFloat(d * 100, 'f', precision ?? 6) + "%",
                        _ => precision is { } digits ? FormatFloat(d, 'g', digits, alternate) : PyText.Str(value),
                    };
                    if (grouping == ',' && type is 'f' or 'F')
                    {
                        var dot = text.IndexOf('.');
                        var integer = long.Parse(text[..(dot < 0 ? text.Length : dot)], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                        text = Math.Abs(integer).ToString("#,0", CultureInfo.InvariantCulture) + (dot < 0 ? string.Empty : text[dot..]);
                        text = (d < 0 ? "-" : string.Empty) + text;
                    }

                    if (!text.StartsWith('-') && sign is '+' or ' ')
                    {
                        text = sign + text;
                    }

                    align ??= '>';
                    break;
                }

            default:
                if (spec.Length > 0)
                {
                    throw TemplateError.Type($"unsupported format string passed to {PyOps.TypeName(value)}.__format__");
                }

                text = PyText.Str(value);
                break;
        }

        return Pad(text, width, align ?? '<', fill ?? ' ');
    }
}
