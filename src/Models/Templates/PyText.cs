using System.Globalization;
using System.Text;

namespace DistributedInference.Models.Templates;

/// <summary>
/// Python's <c>str()</c> and <c>repr()</c> of template values, which is what a template prints: <c>None</c>,
/// <c>True</c>, floats in their shortest round-trip form (<c>12.0</c>, <c>1e-05</c>, <c>1e+16</c>), strings quoted and
/// escaped as CPython quotes them inside lists and dicts (<c>['a', "it's"]</c>).
/// </summary>
internal static class PyText
{
    /// <summary>Python's <c>str(value)</c> (an undefined value prints as nothing).</summary>
    public static string Str(object? value) => value switch
    {
        string s => s,
        Undefined => string.Empty,
        _ => Repr(value),
    };

    /// <summary>Python's <c>repr(value)</c>.</summary>
    public static string Repr(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => StringRepr(s),
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        PyTuple { Count: 1 } tuple => "(" + Repr(tuple.Items[0]) + ",)",
        PyTuple tuple => "(" + string.Join(", ", tuple.Items.Select(Repr)) + ")",
        PyDict dict => "{" + string.Join(", ", dict.Items.Select(p => Repr(p.Key) + ": " + Repr(p.Value))) + "}",
        Undefined => "Undefined",
        TemplateNamespace ns => "<Namespace " + Repr(ns.Attributes) + ">",
        LoopContext loop => $"<LoopContext {loop.Index0 + 1}/{loop.Length}>",
        PyGenerator generator => $"<generator object {generator.Name} at 0x{RuntimeHelpers(generator):x12}>",
        Macro macro => $"<Macro {Repr(macro.Name)}>",
        BoundMethod method => $"<built-in method {method.Name} of {PyOps.TypeName(method.Target)} object at 0x{RuntimeHelpers(method):x12}>",
        ITemplateCallable callable => $"<function {callable.Name} at 0x{RuntimeHelpers(callable):x12}>",
        _ => value.ToString() ?? string.Empty,
    };

    private static long RuntimeHelpers(object o) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(o);

    /// <summary>
    /// CPython's <c>float.__repr__</c>: the shortest digits that round-trip, positional when the decimal exponent is in
    /// [-4, 16), else scientific with a sign and at least two exponent digits; always a <c>.0</c> or an exponent.
    /// </summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        if (d == 0)
        {
            return double.IsNegative(d) ? "-0.0" : "0.0";
        }

        var (digits, decimalPoint) = ShortestDigits(Math.Abs(d));
        var sign = d < 0 ? "-" : string.Empty;
        if (decimalPoint is > -4 and <= 16)
        {
            if (decimalPoint <= 0)
            {
                return sign + "0." + new string('0', -decimalPoint) + digits;
            }

            if (decimalPoint >= digits.Length)
            {
                return sign + digits + new string('0', decimalPoint - digits.Length) + ".0";
            }

            return sign + digits[..decimalPoint] + "." + digits[decimalPoint..];
        }

        var exponent = decimalPoint - 1;
        var mantissa = digits.Length > 1 ? digits[..1] + "." + digits[1..] : digits;
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>The shortest round-trip digits of a positive finite double and the position of the decimal point
    /// (value = 0.DIGITS x 10^point), as <c>_Py_dg_dtoa</c> mode 0 gives them.</summary>
    private static (string Digits, int DecimalPoint) ShortestDigits(double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        var exponent = 0;
        var e = text.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(text[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            text = text[..e];
        }

        var dot = text.IndexOf('.');
        var integer = dot >= 0 ? text[..dot] : text;
        var fraction = dot >= 0 ? text[(dot + 1)..] : string.Empty;
        var all = integer + fraction;
        var leadingZeros = all.Length - all.TrimStart('0').Length;
        var digits = all.TrimStart('0').TrimEnd('0');
        return (digits.Length == 0 ? "0" : digits, integer.Length - leadingZeros + exponent);
    }

    /// <summary>CPython's <c>unicode_repr</c>: single quotes unless the text has one and no double quote.</summary>
    public static string StringRepr(string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var builder = new StringBuilder(s.Length + 2);
        builder.Append(quote);
        foreach (var rune in s.EnumerateRunes())
        {
            var c = rune.Value;
            if (c == quote || c == '\\')
            {
                builder.Append('\\').Append((char)c);
            }
            else if (c == '\t')
            {
                builder.Append("\\t");
            }
            else if (c == '\n')
            {
                builder.Append("\\n");
            }
            else if (c == '\r')
            {
                builder.Append("\\r");
            }
            else if (c < ' ' || c == 0x7f)
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\x{c:x2}");
            }
            else if (c < 0x7f || IsPrintable(rune))
            {
                builder.Append(rune.ToString());
            }
            else if (c <= 0xff)
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\x{c:x2}");
            }
            else if (c <= 0xffff)
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{c:x4}");
            }
            else
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\U{c:x8}");
            }
        }

        return builder.Append(quote).ToString();
    }

    /// <summary>Python's <c>str.isprintable</c> for one character: not a control, format, surrogate, private-use,
    /// unassigned or separator character, except the space.</summary>
    public static bool IsPrintable(Rune rune)
    {
        if (rune.Value == ' ')
        {
            return true;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.SpaceSeparator => false,
            _ => true,
        };
    }
}
