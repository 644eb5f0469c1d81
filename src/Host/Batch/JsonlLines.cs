using System.Text;

namespace DistributedInference.Host.Batch;

/// <summary>One line of a JSONL file: its text, or why it has none (not UTF-8, too long).</summary>
/// <param name="Line">1-based line number.</param>
public readonly record struct JsonlLine(long Line, string? Text, string? Problem);

/// <summary>
/// The lines of a JSONL file as JSON Lines defines them: split at <c>\n</c> only (a <c>\r</c> before it is dropped, one
/// elsewhere is part of the line), strict UTF-8 (a line with invalid bytes is reported, not repaired), a byte order mark
/// at the start skipped, blank lines skipped with their numbers kept. A line longer than <c>maxBytes</c> is reported
/// without being held: memory stays at most one line of that size.
/// </summary>
public static class JsonlLines
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <exception cref="InvalidInputException">The file is not a regular file (a pipe: it is read more than once).</exception>
    public static IEnumerable<JsonlLine> Read(string path, long maxBytes)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        if (!stream.CanSeek)
        {
            throw new Models.InvalidInputException($"{path} is not a regular file (a pipe or device): give a file, which is read more than once");
        }

        var buffer = new byte[1 << 16];
        var line = new MemoryStream();
        long number = 0;
        long length = 0;
        var first = true;
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            var start = 0;
            for (var i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)'\n')
                {
                    continue;
                }

                Append(buffer.AsSpan(start, i - start));
                start = i + 1;
                number++;
                if (Finish() is { } done)
                {
                    yield return done;
                }
            }

            Append(buffer.AsSpan(start, read - start));
        }

        if (length > 0)
        {
            number++;
            if (Finish() is { } last)
            {
                yield return last;
            }
        }

        void Append(ReadOnlySpan<byte> bytes)
        {
            length += bytes.Length;
            if (length <= maxBytes)
            {
                line.Write(bytes);
            }
        }

        JsonlLine? Finish()
        {
            var total = length;
            var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
            line.SetLength(0);
            length = 0;
            if (first)
            {
                first = false;
                if (bytes.StartsWith("\uFEFF"u8))
                {
                    bytes = bytes[3..];
                    total -= 3;
                }
            }

            if (bytes.EndsWith("\r"u8))
            {
                bytes = bytes[..^1];
                total--;
            }

            if (total > maxBytes)
            {
                return new JsonlLine(number, null, $"line {number} is {total} bytes, over the limit of {maxBytes} (--max-request-bytes)");
            }

            string text;
            try
            {
                text = Strict.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                return new JsonlLine(number, null, $"line {number} is not valid UTF-8");
            }

            return string.IsNullOrWhiteSpace(text) ? null : new JsonlLine(number, text, null);
        }
    }
}
