namespace DistributedInference.Models.Tokenization;

/// <summary>
/// Finds the regex shape on which a backtracking engine takes exponential time: a group repeated without bound (or more
/// than once) whose content can itself match in several ways, such as <c>(a+)+</c>, <c>(a|aa)*</c> or <c>(\s?x)+</c>.
/// Hugging Face's Rust tokenizers run <c>Split</c> and <c>Replace</c> patterns through Oniguruma, which gives up after
/// ten million retries in one match, and then the tokenizers library panics; Tokenizers.DotNet 1.4.1 is built with
/// <c>panic = "abort"</c> and a panic cannot unwind through its C functions anyway, so one long prompt (41 characters for
/// <c>(a+)+$</c>) aborts the whole process. Checked before the library is ever called. Atomic groups (<c>(?&gt;...)</c>)
/// and possessive quantifiers (<c>++</c>, <c>*+</c>) do not backtrack and pass; lookarounds are checked inside. Not
/// found: polynomial blow-ups without nested repetition (<c>a*a*a*b</c>).
/// </summary>
public static class BacktrackingPatterns
{
    /// <summary>The first nested repetition in <paramref name="pattern"/> (Oniguruma/Rust syntax), or null when there is none.</summary>
    public static string? FindNestedRepetition(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var parser = new Parser(pattern);
        try
        {
            return parser.Alternation().Risk;
        }
        catch (IndexOutOfRangeException)
        {
            // A pattern cut short: the tokenizers library reports it when it loads the file.
            return null;
        }
    }

    // What a parsed piece tells the check: whether it can match in more than one way, and the first risky part in it.
    private readonly record struct Shape(bool Varies, string? Risk);

    private sealed class Parser(string pattern)
    {
        private int _at;

        private bool More => _at < pattern.Length;

        // alternative ('|' alternative)*
        public Shape Alternation()
        {
            var alternatives = 0;
            var varies = false;
            string? risk = null;
            do
            {
                alternatives++;
                var sequence = Sequence();
                varies |= sequence.Varies;
                risk ??= sequence.Risk;
            }
            while (More && pattern[_at] == '|' && ++_at > 0);

            return new Shape(varies || alternatives > 1, risk);
        }

        // (atom quantifier?)*, up to ')' or '|' or the end
        private Shape Sequence()
        {
            var varies = false;
            string? risk = null;
            while (More && pattern[_at] is not ('|' or ')'))
            {
                var start = _at;
                var (atom, repeatable) = Atom();
                var (min, max, possessive) = Quantifier();
                if (!repeatable)
                {
                    continue;
                }

                risk ??= atom.Risk;
                if (atom.Varies && max > 1 && !possessive)
                {
                    risk ??= pattern[start.._at];
                }

                varies |= !possessive && (atom.Varies || min != max);
            }

            return new Shape(varies, risk);
        }

        // One atom; repeatable is false for what consumes nothing and takes no quantifier (inline flags, comments).
        private (Shape Atom, bool Repeatable) Atom()
        {
            var c = pattern[_at++];
            switch (c)
            {
                case '\\':
                    Escape();
                    return (default, true);
                case '[':
                    CharacterClass();
                    return (default, true);
                case '(':
                    return Group();
                default:
                    return (default, true);
            }
        }

        private (Shape Atom, bool Repeatable) Group()
        {
            var atomic = false;
            var lookaround = false;
            if (pattern[_at] == '?')
            {
                _at++;
                switch (pattern[_at])
                {
                    case ':':
                        _at++;
                        break;
                    case '>':
                        _at++;
                        atomic = true;
                        break;
                    case '=' or '!':
                        _at++;
                        lookaround = true;
                        break;
                    case '#':
                        while (pattern[_at] != ')')
                        {
                            _at++;
                        }

                        _at++;
                        return (default, false);
                    case '<' when pattern[_at + 1] is '=' or '!':
                        _at += 2;
                        lookaround = true;
                        break;
                    case '<' or 'P' or '\'':
                        // A named group: (?<name>...), (?P<name>...), (?'name'...).
                        var close = pattern[_at] == '\'' ? '\'' : '>';
                        while (pattern[_at] != close)
                        {
                            _at++;
                        }

                        _at++;
                        break;
                    default:
                        // Flags: (?i) alone, or (?i-m:...) around a group.
                        while (pattern[_at] is not (':' or ')'))
                        {
                            _at++;
                        }

                        if (pattern[_at++] == ')')
                        {
                            return (default, false);
                        }

                        break;
                }
            }

            var inside = Alternation();
            _at++; // ')'
            return (new Shape(!atomic && !lookaround && inside.Varies, inside.Risk), true);
        }

        private (int Min, int Max, bool Possessive) Quantifier()
        {
            if (!More)
            {
                return (1, 1, false);
            }

            (int Min, int Max) bounds;
            switch (pattern[_at])
            {
                case '*':
                    bounds = (0, int.MaxValue);
                    _at++;
                    break;
                case '+':
                    bounds = (1, int.MaxValue);
                    _at++;
                    break;
                case '?':
                    bounds = (0, 1);
                    _at++;
                    break;
                case '{' when Interval() is { } interval:
                    bounds = interval;
                    break;
                default:
                    return (1, 1, false);
            }

            var possessive = More && pattern[_at] == '+';
            if (More && pattern[_at] is '?' or '+')
            {
                _at++;
            }

            return (bounds.Min, bounds.Max, possessive);
        }

        // {n}, {n,}, {n,m}, {,m}; anything else is a literal '{'.
        private (int, int)? Interval()
        {
            var close = pattern.IndexOf('}', _at);
            if (close < 0)
            {
                return null;
            }

            var parts = pattern[(_at + 1)..close].Split(',');
            if (parts.Length > 2 || !parts.All(p => p.Length == 0 || p.All(char.IsAsciiDigit)) || parts.All(p => p.Length == 0))
            {
                return null;
            }

            static int Number(string text, int empty) => text.Length == 0 ? empty : int.TryParse(text, out var n) ? n : int.MaxValue;
            var min = Number(parts[0], 0);
            var max = parts.Length == 1 ? min : Number(parts[1], int.MaxValue);
            _at = close + 1;
            return (min, max);
        }

        private void Escape()
        {
            var c = pattern[_at++];
            if (c is 'p' or 'P' or 'x' or 'u' or 'o' && More && pattern[_at] == '{')
            {
                var close = pattern.IndexOf('}', _at);
                _at = close < 0 ? pattern.Length + 1 : close + 1;
            }
        }

        private void CharacterClass()
        {
            var depth = 1;
            if (More && pattern[_at] == '^')
            {
                _at++;
            }

            if (More && pattern[_at] == ']')
            {
                _at++;
            }

            while (depth > 0)
            {
                var c = pattern[_at++];
                if (c == '\\')
                {
                    Escape();
                }
                else if (c == '[')
                {
                    depth++;
                }
                else if (c == ']')
                {
                    depth--;
                }
            }
        }
    }
}
