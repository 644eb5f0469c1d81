using System.Text;
using DistributedInference.Models.Tokenization;

namespace DistributedInference.Models.Serving;

/// <summary>
/// The text of a sequence as its tokens arrive (vLLM's incremental detokenizer and stop checker): each token's text is
/// what decoding from a few tokens back adds, so a character whose bytes span several tokens is held until it is whole
/// (a decoded text ending in U+FFFD waits for the next token); text that may be the start of a stop string is held
/// until it is known not to be one; the first stop string found ends the text before it (or after it, with
/// <c>includeStopString</c>). The deltas <see cref="Append"/> and <see cref="Flush"/> return add up to <see cref="Text"/>.
/// Not thread-safe: one per sequence.
/// </summary>
public sealed class OutputText(ITextTokenizer tokenizer, IReadOnlyList<string> stopStrings, bool skipSpecialTokens = true, bool includeStopString = false)
{
    private readonly List<long> _tokens = [];
    private readonly StringBuilder _text = new();
    private readonly int _holdBack = stopStrings.Count == 0 ? 0 : stopStrings.Max(s => s.Length) - 1;
    private int _prefixOffset;
    private int _readOffset;
    private int _sent;

    /// <summary>The text so far (cut at a stop string once one is found).</summary>
    public string Text => _text.ToString();

    /// <summary>The stop string that ended the text, or null.</summary>
    public string? MatchedStop { get; private set; }

    /// <summary>Adds a token; returns the text that may be sent now (possibly empty). Nothing is added after a stop string.</summary>
    public string Append(long tokenId)
    {
        if (MatchedStop is not null)
        {
            return string.Empty;
        }

        _tokens.Add(tokenId);
        var prefix = tokenizer.Decode(_tokens.Skip(_prefixOffset).Take(_readOffset - _prefixOffset), skipSpecialTokens);
        var full = tokenizer.Decode(_tokens.Skip(_prefixOffset), skipSpecialTokens);
        if (full.Length <= prefix.Length || full.EndsWith('\uFFFD'))
        {
            return string.Empty;
        }

        AddText(full[prefix.Length..]);
        _prefixOffset = _readOffset;
        _readOffset = _tokens.Count;
        return Ready(final: false);
    }

    /// <summary>At the end of the sequence: whatever was held back (an unfinished character, a possible stop string's start).</summary>
    public string Flush()
    {
        if (MatchedStop is null && _readOffset < _tokens.Count)
        {
            var prefix = tokenizer.Decode(_tokens.Skip(_prefixOffset).Take(_readOffset - _prefixOffset), skipSpecialTokens);
            var full = tokenizer.Decode(_tokens.Skip(_prefixOffset), skipSpecialTokens);
            if (full.Length > prefix.Length)
            {
                AddText(full[prefix.Length..]);
            }

            _readOffset = _tokens.Count;
        }

        return Ready(final: true);
    }

    private void AddText(string delta)
    {
        var searchFrom = Math.Max(0, _text.Length - _holdBack);
        _text.Append(delta);
        if (stopStrings.Count == 0)
        {
            return;
        }

        var text = _text.ToString();
        var best = -1;
        string? match = null;
        foreach (var stop in stopStrings)
        {
            var at = text.IndexOf(stop, searchFrom, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best))
            {
                best = at;
                match = stop;
            }
        }

        if (match is not null)
        {
            MatchedStop = match;
            _text.Length = includeStopString ? best + match.Length : best;
        }
    }

    private string Ready(bool final)
    {
        var limit = final || MatchedStop is not null ? _text.Length : Math.Max(_sent, _text.Length - _holdBack);
        if (limit <= _sent)
        {
            return string.Empty;
        }

        // Never split a surrogate pair across two deltas.
        if (!final && limit < _text.Length && char.IsHighSurrogate(_text[limit - 1]))
        {
            limit--;
        }

        var delta = _text.ToString(_sent, limit - _sent);
        _sent = limit;
        return delta;
    }
}
