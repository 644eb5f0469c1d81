using System.Globalization;
using System.Text;

namespace DistributedInference.Models.Templates;

/// <summary>
/// Cuts a template into tokens as jinja2 3.1's <c>Lexer.tokeniter</c> does with transformers' settings
/// (<c>trim_blocks</c>, <c>lstrip_blocks</c>, <c>keep_trailing_newline=False</c>, default delimiters): line breaks
/// (<c>\r\n</c>, <c>\r</c>, <c>\n</c>) become <c>\n</c> and one final one is dropped; <c>{%-</c> / <c>-%}</c> strip all
/// whitespace on their side; a block or comment tag alone on its line takes the line's indentation with it and the
/// line break after it; <c>+</c> keeps both; <c>{% raw %}</c> is data; string literals are unescaped as Python's
/// <c>unicode-escape</c> codec does.
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly string[] Operators = ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    private readonly string _source;
    private readonly string _name;
    private readonly List<int> _lineStarts = [0];
    private readonly List<TemplateToken> _tokens = [];
    private int _pos;
    private bool _lineStarting = true;

    private TemplateLexer(string source, string name)
    {
        _source = Normalize(source);
        _name = name;
        for (var i = 0; i < _source.Length; i++)
        {
            if (_source[i] == '\n')
            {
                _lineStarts.Add(i + 1);
            }
        }
    }

    /// <exception cref="TemplateException">A character no token starts with, an unclosed comment or raw block,
    /// unbalanced brackets, a bad escape in a string.</exception>
    public static List<TemplateToken> Tokenize(string source, string name)
    {
        var lexer = new TemplateLexer(source, name);
        lexer.Run();
        return lexer._tokens;
    }

    /// <summary>jinja2's <c>newline_re.split(source)[::2]</c>, the last line dropped when empty, joined by <c>\n</c>.</summary>
    private static string Normalize(string source)
    {
        var text = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        return text.EndsWith('\n') ? text[..^1] : text;
    }

    private int LineAt(int position)
    {
        var index = _lineStarts.BinarySearch(position);
        return (index >= 0 ? index : ~index - 1) + 1;
    }

    private TemplateException Fail(string message, int position) =>
        TemplateException.Syntax(_name, LineAt(position), message);

    private void Run()
    {
        while (_pos < _source.Length)
        {
            var start = FindTagStart(_pos);
            if (start < 0)
            {
                AddData(_source[_pos..], _pos);
                _pos = _source.Length;
                break;
            }

            var text = _source[_pos..start];
            var kind = _source[start + 1];
            var signPosition = start + 2;
            var sign = signPosition < _source.Length && _source[signPosition] is '-' or '+' ? _source[signPosition] : '\0';
            var rawEnd = 0;
            var isRaw = kind == '%' && TryMatchRawBegin(start, out rawEnd);
            AddData(Strip(text, sign, lstrip: kind != '{'), _pos);
            _pos = signPosition + (sign == '\0' ? 0 : 1);
            _lineStarting = false;
            if (isRaw)
            {
                _pos = rawEnd;
                _lineStarting = _source[rawEnd - 1] == '\n';
                LexRaw();
            }
            else if (kind == '#')
            {
                LexComment(start);
            }
            else
            {
                LexTag(kind == '%', start);
            }
        }

        _tokens.Add(new TemplateToken(TokenKind.Eof, string.Empty, LineAt(_source.Length)));
    }

    private int FindTagStart(int from)
    {
        for (var i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
        {
            if (_source[i + 1] is '{' or '%' or '#')
            {
                return i;
            }
        }

        return -1;
    }

    private void AddData(string text, int position)
    {
        if (text.Length > 0)
        {
            _tokens.Add(new TemplateToken(TokenKind.Data, text, LineAt(position)));
        }
    }

    /// <summary>The whitespace control of the text before a tag: <c>-</c> strips, or lstrip_blocks for block and comment tags.</summary>
    private string Strip(string text, char sign, bool lstrip)
    {
        if (sign == '-')
        {
            return PyStrings.RStrip(text);
        }

        if (sign == '+' || !lstrip)
        {
            return text;
        }

        var lineStart = text.LastIndexOf('\n') + 1;
        if ((lineStart > 0 || _lineStarting) && lineStart < text.Length && text.AsSpan(lineStart).ToString().All(PyStrings.IsSpace))
        {
            return text[..lineStart];
        }

        return text;
    }

    private int SkipSpace(int position)
    {
        while (position < _source.Length && PyStrings.IsSpace(_source[position]))
        {
            position++;
        }

        return position;
    }

    private bool TryMatchRawBegin(int start, out int end)
    {
        end = 0;
        var p = start + 2;
        if (p < _source.Length && _source[p] is '-' or '+')
        {
            p++;
        }

        p = SkipSpace(p);
        if (string.CompareOrdinal(_source, p, "raw", 0, 3) != 0)
        {
            return false;
        }

        p = SkipSpace(p + 3);
        if (string.CompareOrdinal(_source, p, "-%}", 0, 3) == 0)
        {
            end = SkipSpace(p + 3);
            return true;
        }

        if (string.CompareOrdinal(_source, p, "%}", 0, 2) == 0)
        {
            end = p + 2;
            return true;
        }

        return false;
    }

    private void LexRaw()
    {
        for (var start = FindTagStart(_pos); start >= 0; start = FindTagStart(start + 1))
        {
            if (_source[start + 1] != '%')
            {
                continue;
            }

            var p = start + 2;
            var sign = p < _source.Length && _source[p] is '-' or '+' ? _source[p] : '\0';
            p = SkipSpace(sign == '\0' ? p : p + 1);
            if (string.CompareOrdinal(_source, p, "endraw", 0, 6) != 0)
            {
                continue;
            }

            p = SkipSpace(p + 6);
            if (!TryMatchTagEnd(p, '%', out var end))
            {
                continue;
            }

            AddData(Strip(_source[_pos..start], sign, lstrip: true), _pos);
            _pos = end;
            _lineStarting = _source[end - 1] == '\n';
            return;
        }

        throw Fail("Missing end of raw directive", _pos);
    }

    private void LexComment(int start)
    {
        for (var p = _pos; p < _source.Length; p++)
        {
            if (TryMatchTagEnd(p, '#', out var end))
            {
                _pos = end;
                _lineStarting = _source[end - 1] == '\n';
                return;
            }
        }

        throw Fail("Missing end of comment tag", start);
    }

    /// <summary>
    /// The end of a tag at <paramref name="p"/>: <c>-X}</c> and the whitespace after it; for block and comment tags also
    /// <c>+X}</c>, and <c>X}</c> with one <c>\n</c> after it (trim_blocks); for print tags <c>}}</c>.
    /// </summary>
    private bool TryMatchTagEnd(int p, char delimiter, out int end)
    {
        end = 0;
        var close = delimiter == '{' ? "}}" : delimiter + "}";
        var sign = p < _source.Length ? _source[p] : '\0';
        if ((sign == '-' || (sign == '+' && delimiter != '{')) && string.CompareOrdinal(_source, p + 1, close, 0, 2) == 0)
        {
            end = sign == '-' ? SkipSpace(p + 3) : p + 3;
            return true;
        }

        if (string.CompareOrdinal(_source, p, close, 0, 2) != 0)
        {
            return false;
        }

        end = p + 2;
        if (delimiter != '{' && end < _source.Length && _source[end] == '\n')
        {
            end++;
        }

        return true;
    }

    private void LexTag(bool block, int start)
    {
        _tokens.Add(new TemplateToken(block ? TokenKind.BlockBegin : TokenKind.VariableBegin, string.Empty, LineAt(start)));
        var balance = new Stack<char>();
        while (_pos < _source.Length)
        {
            if (balance.Count == 0 && TryMatchTagEnd(_pos, block ? '%' : '{', out var end))
            {
                _tokens.Add(new TemplateToken(block ? TokenKind.BlockEnd : TokenKind.VariableEnd, string.Empty, LineAt(_pos)));
                _pos = end;
                _lineStarting = _source[end - 1] == '\n';
                return;
            }

            var c = _source[_pos];
            if (PyStrings.IsSpace(c))
            {
                _pos = SkipSpace(_pos);
                continue;
            }

            if (TryNumber() || TryName() || TryString())
            {
                continue;
            }

            var op = Operators.FirstOrDefault(o => string.CompareOrdinal(_source, _pos, o, 0, o.Length) == 0)
                ?? throw Fail($"unexpected char {PyText.Repr(c.ToString())} at {_pos}", _pos);
            Balance(balance, op);
            _tokens.Add(new TemplateToken(TokenKind.Operator, op, LineAt(_pos)));
            _pos += op.Length;
        }
    }

    private void Balance(Stack<char> balance, string op)
    {
        switch (op)
        {
            case "{":
                balance.Push('}');
                break;
            case "(":
                balance.Push(')');
                break;
            case "[":
                balance.Push(']');
                break;
            case "}" or ")" or "]":
                if (balance.Count == 0)
                {
                    throw Fail($"unexpected '{op}'", _pos);
                }

                var expected = balance.Pop();
                if (expected != op[0])
                {
                    throw Fail($"unexpected '{op}', expected '{expected}'", _pos);
                }

                break;
        }
    }

    private int Digits(int p)
    {
        // (\d+_)*\d+
        var q = p;
        while (true)
        {
            var r = q;
            while (r < _source.Length && char.IsAsciiDigit(_source[r]))
            {
                r++;
            }

            if (r == q)
            {
                return q == p ? -1 : q - 1;
            }

            if (r < _source.Length && _source[r] == '_' && r + 1 < _source.Length && char.IsAsciiDigit(_source[r + 1]))
            {
                q = r + 1;
                continue;
            }

            return r;
        }
    }

    private int Exponent(int p)
    {
        if (p >= _source.Length || (_source[p] != 'e' && _source[p] != 'E'))
        {
            return -1;
        }

        p++;
        if (p < _source.Length && _source[p] is '+' or '-')
        {
            p++;
        }

        return Digits(p);
    }

    private bool TryNumber()
    {
        var c = _source[_pos];
        if (!char.IsAsciiDigit(c))
        {
            return false;
        }

        // float_re: not after a dot; digits, then (.digits)? exponent, or .digits.
        if (_pos == 0 || _source[_pos - 1] != '.')
        {
            var intEnd = Digits(_pos);
            var end = -1;
            var fractionEnd = intEnd < _source.Length && _source[intEnd] == '.' ? Digits(intEnd + 1) : -1;
            if (fractionEnd > 0 && Exponent(fractionEnd) is > 0 and var e1)
            {
                end = e1;
            }
            else if (Exponent(intEnd) is > 0 and var e2)
            {
                end = e2;
            }
            else if (fractionEnd > 0)
            {
                end = fractionEnd;
            }

            if (end > 0)
            {
                var text = _source[_pos..end];
                var value = double.Parse(text.Replace("_", string.Empty, StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture);
                _tokens.Add(new TemplateToken(TokenKind.Float, text, LineAt(_pos), value));
                _pos = end;
                return true;
            }
        }

        var (length, number) = Integer(_pos);
        _tokens.Add(new TemplateToken(TokenKind.Integer, _source.Substring(_pos, length), LineAt(_pos), number));
        _pos += length;
        return true;
    }

    private (int Length, long Value) Integer(int p)
    {
        var c1 = p + 1 < _source.Length ? char.ToLowerInvariant(_source[p + 1]) : '\0';
        if (_source[p] == '0' && c1 is 'b' or 'o' or 'x')
        {
            var radix = c1 == 'b' ? 2 : c1 == 'o' ? 8 : 16;
            var q = p + 2;
            var value = 0L;
            var any = false;
            while (q < _source.Length)
            {
                var ch = _source[q];
                var skip = ch == '_' && q + 1 < _source.Length ? 1 : 0;
                var digit = HexValue(_source[q + skip]);
                if (digit < 0 || digit >= radix)
                {
                    break;
                }

                value = checked((value * radix) + digit);
                q += skip + 1;
                any = true;
            }

            if (any)
            {
                return (q - p, value);
            }
        }

        if (_source[p] == '0')
        {
            // 0(_?0)*
            var q = p + 1;
            while (q < _source.Length && (_source[q] == '0' || (_source[q] == '_' && q + 1 < _source.Length && _source[q + 1] == '0')))
            {
                q += _source[q] == '_' ? 2 : 1;
            }

            return (q - p, 0);
        }

        var end = Digits(p);
        var digits = _source[p..end].Replace("_", string.Empty, StringComparison.Ordinal);
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            throw Fail($"integer literal {digits} is too large", p);
        }

        return (end - p, number);
    }

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    private bool TryName()
    {
        if (!PyStrings.IsIdentifierStart(_source[_pos]))
        {
            return false;
        }

        var end = _pos + 1;
        while (end < _source.Length && PyStrings.IsIdentifierPart(_source[end]))
        {
            end++;
        }

        _tokens.Add(new TemplateToken(TokenKind.Name, _source[_pos..end], LineAt(_pos)));
        _pos = end;
        return true;
    }

    private bool TryString()
    {
        var quote = _source[_pos];
        if (quote is not ('\'' or '"'))
        {
            return false;
        }

        var p = _pos + 1;
        while (p < _source.Length && _source[p] != quote)
        {
            p += _source[p] == '\\' ? 2 : 1;
        }

        if (p >= _source.Length)
        {
            return false;
        }

        var value = Unescape(_source[(_pos + 1)..p], _pos);
        _tokens.Add(new TemplateToken(TokenKind.String, value, LineAt(_pos)));
        _pos = p + 1;
        return true;
    }

    /// <summary>Python's <c>s.encode("ascii", "backslashreplace").decode("unicode-escape")</c>, as jinja2 unescapes literals.</summary>
    private string Unescape(string raw, int position)
    {
        if (raw.IndexOf('\\') < 0)
        {
            return raw;
        }

        var ascii = new StringBuilder(raw.Length);
        foreach (var rune in raw.EnumerateRunes())
        {
            if (rune.Value < 128)
            {
                ascii.Append((char)rune.Value);
            }
            else
            {
                ascii.Append(rune.Value switch
                {
                    <= 0xff => $"\\x{rune.Value:x2}",
                    <= 0xffff => $"\\u{rune.Value:x4}",
                    _ => $"\\U{rune.Value:x8}",
                });
            }
        }

        var s = ascii.ToString();
        var result = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\')
            {
                result.Append(s[i]);
                continue;
            }

            if (++i >= s.Length)
            {
                throw Fail("\\ at end of string", position);
            }

            var c = s[i];
            switch (c)
            {
                case '\n':
                    break;
                case '\\' or '\'' or '"':
                    result.Append(c);
                    break;
                case 'a':
                    result.Append('\a');
                    break;
                case 'b':
                    result.Append('\b');
                    break;
                case 'f':
                    result.Append('\f');
                    break;
                case 'n':
                    result.Append('\n');
                    break;
                case 'r':
                    result.Append('\r');
                    break;
                case 't':
                    result.Append('\t');
                    break;
                case 'v':
                    result.Append('\v');
                    break;
                case >= '0' and <= '7':
                    var octal = c - '0';
                    for (var k = 0; k < 2 && i + 1 < s.Length && s[i + 1] is >= '0' and <= '7'; k++)
                    {
                        octal = (octal * 8) + (s[++i] - '0');
                    }

                    result.Append(char.ConvertFromUtf32(octal));
                    break;
                case 'x' or 'u' or 'U':
                    var count = c == 'x' ? 2 : c == 'u' ? 4 : 8;
                    var code = 0;
                    for (var k = 0; k < count; k++)
                    {
                        var digit = i + 1 < s.Length ? HexValue(s[i + 1]) : -1;
                        if (digit < 0)
                        {
                            throw Fail(c == 'x' ? "truncated \\xXX escape" : c == 'u' ? "truncated \\uXXXX escape" : "truncated \\UXXXXXXXX escape", position);
                        }

                        code = (code * 16) + digit;
                        i++;
                    }

                    if (code > 0x10FFFF || code is >= 0xD800 and <= 0xDFFF)
                    {
                        if (code > 0x10FFFF)
                        {
                            throw Fail("illegal Unicode character", position);
                        }

                        result.Append((char)code);
                    }
                    else
                    {
                        result.Append(char.ConvertFromUtf32(code));
                    }

                    break;
                case 'N':
                    throw Fail("\\N{...} escapes are not supported in template strings", position);
                default:
                    result.Append('\\').Append(c);
                    break;
            }
        }

        return result.ToString();
    }
}
