using System.Globalization;
using System.Text;

namespace DistributedInference.Models.Templates;

/// <summary>
/// Python's <c>str</c> semantics the templates rely on: whitespace as <c>str.isspace</c> defines it, lengths and indexes
/// in code points (an emoji is one character), and the <c>str</c> methods (<c>split</c>, <c>strip(chars)</c>,
/// <c>startswith</c>, ...) with their arguments.
/// </summary>
internal static class PyStrings
{
    /// <summary>Python's <c>str.isspace</c> for one character (.NET's <c>char.IsWhiteSpace</c> plus U+001C..U+001F).</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    public static bool IsIdentifierStart(char c) => c == '_' || char.IsLetter(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.LetterNumber;

    public static bool IsIdentifierPart(char c) => IsIdentifierStart(c) || char.IsDigit(c) || CharUnicodeInfo.GetUnicodeCategory(c) is
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DecimalDigitNumber;

    /// <summary>Python's <c>str.rstrip()</c>.</summary>
    public static string RStrip(string s)
    {
        var end = s.Length;
        while (end > 0 && IsSpace(s[end - 1]))
        {
            end--;
        }

        return s[..end];
    }

    /// <summary>Python's <c>str.strip/lstrip/rstrip(chars)</c>: whitespace when <paramref name="chars"/> is null, else any
    /// of its characters.</summary>
    public static string Strip(string s, string? chars, bool left = true, bool right = true)
    {
        var set = chars is null ? null : new HashSet<int>(chars.EnumerateRunes().Select(r => r.Value));
        var runes = s.EnumerateRunes().ToList();
        bool Stripped(Rune r) => set is null ? r.IsBmp && IsSpace((char)r.Value) : set.Contains(r.Value);
        var start = 0;
        var end = runes.Count;
        while (left && start < end && Stripped(runes[start]))
        {
            start++;
        }

        while (right && end > start && Stripped(runes[end - 1]))
        {
            end--;
        }

        if (start == 0 && end == runes.Count)
        {
            return s;
        }

        var builder = new StringBuilder();
        for (var i = start; i < end; i++)
        {
            builder.Append(runes[i].ToString());
        }

        return builder.ToString();
    }

    private static bool HasSurrogates(string s)
    {
        foreach (var c in s)
        {
            if (char.IsSurrogate(c))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Python's <c>len(s)</c>: code points.</summary>
    public static int Length(string s) => HasSurrogates(s) ? s.EnumerateRunes().Count() : s.Length;

    /// <summary>The code points of <paramref name="s"/>, each as a string (one or two UTF-16 units).</summary>
    public static List<string> Characters(string s) => s.EnumerateRunes().Select(r => r.ToString()).ToList();

    /// <summary>The UTF-16 index of code point <paramref name="index"/> (0 ≤ index ≤ length).</summary>
    public static int CharIndex(string s, int index)
    {
        if (!HasSurrogates(s))
        {
            return index;
        }

        var position = 0;
        for (var i = 0; i < index && position < s.Length; i++)
        {
            position += char.IsHighSurrogate(s[position]) && position + 1 < s.Length && char.IsLowSurrogate(s[position + 1]) ? 2 : 1;
        }

        return position;
    }

    /// <summary>The code point index of UTF-16 index <paramref name="charIndex"/>.</summary>
    public static int CodePointIndex(string s, int charIndex)
    {
        var count = 0;
        for (var i = 0; i < charIndex; i++)
        {
            if (!(char.IsLowSurrogate(s[i]) && i > 0 && char.IsHighSurrogate(s[i - 1])))
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Python's <c>s[start:end]</c> with already-clamped code point bounds.</summary>
    public static string Substring(string s, int start, int end) =>
        end <= start ? string.Empty : s[CharIndex(s, start)..CharIndex(s, end)];

    /// <summary>Python's slice-index clamping of an optional start/end argument (<c>str.find(sub, start, end)</c>).</summary>
    public static (int Start, int End) Range(string s, object? start, object? end)
    {
        var length = Length(s);
        return (Clamp(start, 0, length), Clamp(end, length, length));
    }

    private static int Clamp(object? bound, int whenNone, int length)
    {
        if (bound is null || bound == CallArguments.Missing)
        {
            return whenNone;
        }

        var value = PyOps.ToIndex(bound);
        if (value < 0)
        {
            value += length;
        }

        return (int)Math.Clamp(value, 0, length);
    }

    /// <summary>Python's <c>str.split(sep, maxsplit)</c> / <c>rsplit</c>.</summary>
    public static List<object?> Split(string s, string? separator, long maxSplit, bool fromRight)
    {
        if (separator is { Length: 0 })
        {
            throw TemplateError.Value("empty separator");
        }

        if (maxSplit < 0)
        {
            maxSplit = long.MaxValue;
        }

        var parts = new List<string>();
        if (separator is null)
        {
            // Runs of whitespace separate; leading and trailing whitespace make no empty strings.
            var words = new List<(int Start, int End)>();
            var i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && IsSpace(s[i]))
                {
                    i++;
                }

                if (i >= s.Length)
                {
                    break;
                }

                var start = i;
                while (i < s.Length && !IsSpace(s[i]))
                {
                    i++;
                }

                words.Add((start, i));
            }

            if (words.Count == 0)
            {
                return [];
            }

            if (words.Count - 1 <= maxSplit)
            {
                return words.Select(w => (object?)s[w.Start..w.End]).ToList();
            }

            var keep = (int)maxSplit;
            if (!fromRight)
            {
                var head = words.Take(keep).Select(w => (object?)s[w.Start..w.End]).ToList();
                head.Add(s[words[keep].Start..]);
                return head;
            }

            var tail = words.Skip(words.Count - keep).Select(w => (object?)s[w.Start..w.End]).ToList();
            tail.Insert(0, s[..words[words.Count - keep - 1].End]);
            return tail;
        }

        if (!fromRight)
        {
            var position = 0;
            long splits = 0;
            while (splits < maxSplit)
            {
                var found = s.IndexOf(separator, position, StringComparison.Ordinal);
                if (found < 0)
                {
                    break;
                }

                parts.Add(s[position..found]);
                position = found + separator.Length;
                splits++;
            }

            parts.Add(s[position..]);
        }
        else
        {
            var end = s.Length;
            long splits = 0;
            while (splits < maxSplit && end >= separator.Length)
            {
                var found = s.LastIndexOf(separator, end - 1, end, StringComparison.Ordinal);
                if (found < 0)
                {
                    break;
                }

                parts.Insert(0, s[(found + separator.Length)..end]);
                end = found;
                splits++;
            }

            parts.Insert(0, s[..end]);
        }

        return parts.Select(p => (object?)p).ToList();
    }

    /// <summary>Python's <c>str.splitlines(keepends)</c>.</summary>
    public static List<object?> SplitLines(string s, bool keepEnds)
    {
        var lines = new List<object?>();
        var start = 0;
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            var isBreak = c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029';
            if (!isBreak)
            {
                i++;
                continue;
            }

            var breakLength = c == '\r' && i + 1 < s.Length && s[i + 1] == '\n' ? 2 : 1;
            lines.Add(s[start..(keepEnds ? i + breakLength : i)]);
            i += breakLength;
            start = i;
        }

        if (start < s.Length)
        {
            lines.Add(s[start..]);
        }

        return lines;
    }

    /// <summary>Python's <c>str.title()</c>: a cased character after an uncased one goes to title case, others to lower.</summary>
    public static string Title(string s)
    {
        var builder = new StringBuilder(s.Length);
        var previousCased = false;
        foreach (var c in s)
        {
            var cased = char.IsUpper(c) || char.IsLower(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.TitlecaseLetter;
            builder.Append(cased ? (previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c)) : c);
            previousCased = cased;
        }

        return builder.ToString();
    }

    /// <summary>Python's <c>str.capitalize()</c>.</summary>
    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python's <c>str.center/ljust/rjust(width, fillchar)</c>.</summary>
    public static string Pad(string s, long width, string fill, int align)
    {
        var length = Length(s);
        if (width <= length)
        {
            return s;
        }

        var total = (int)Math.Min(width - length, 10_000_000);
        int left;
        if (align < 0)
        {
            left = 0;
        }
        else if (align > 0)
        {
            left = total;
        }
        else
        {
            // CPython's pad for center: left = marg / 2 + (marg & width & 1).
            left = (total / 2) + (total & (int)width & 1);
        }

        return Repeat(fill, left) + s + Repeat(fill, total - left);
    }

    private static string Repeat(string s, int count) => count <= 0 ? string.Empty : string.Concat(Enumerable.Repeat(s, count));

    /// <summary>Python's <c>str.zfill(width)</c>.</summary>
    public static string ZFill(string s, long width)
    {
        var length = Length(s);
        if (width <= length)
        {
            return s;
        }

        var zeros = new string('0', (int)(width - length));
        return s.Length > 0 && s[0] is '+' or '-' ? s[0] + zeros + s[1..] : zeros + s;
    }
}
