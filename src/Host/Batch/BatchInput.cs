using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DistributedInference.Models;

namespace DistributedInference.Host.Batch;

/// <summary>
/// An OpenAI batch input file (JSONL, one request a line), read as a stream: <see cref="Scan"/> passes over it once
/// before anything runs (the request count for progress, and duplicate <c>custom_id</c>s refused as OpenAI's batch API
/// refuses them); <see cref="Lines"/> yields its lines in order. Memory: 20 bytes per request (a 128-bit hash of each
/// <c>custom_id</c> and its line), whatever the lines hold. Blank lines are skipped and keep their line numbers.
/// </summary>
public sealed class BatchInput
{
    private readonly Dictionary<UInt128, long> _ids;

    private readonly long _maxLineBytes;

    private BatchInput(string path, Dictionary<UInt128, long> ids, int requests, long maxLineBytes)
    {
        Path = path;
        _ids = ids;
        Requests = requests;
        _maxLineBytes = maxLineBytes;
    }

    public string Path { get; }

    /// <summary>Non-blank lines: the requests the output will answer.</summary>
    public int Requests { get; }

    /// <summary>Reads the file through once.</summary>
    /// <param name="maxLineBytes">Longer lines are requests too large to run (answered with an error line).</param>
    /// <exception cref="InvalidInputException">The file is missing, not a regular file, or two lines have the same <c>custom_id</c>.</exception>
    public static BatchInput Scan(string path, long maxLineBytes)
    {
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"--input {path}: no such file");
        }

        var ids = new Dictionary<UInt128, long>();
        var requests = 0;
        foreach (var (line, text, _) in JsonlLines.Read(path, maxLineBytes))
        {
            requests++;
            if (text is null || CustomIdOf(text) is not { } id)
            {
                continue;
            }

            if (!ids.TryAdd(Key(id), line))
            {
                throw new InvalidInputException($"--input {path}: custom_id '{id}' is on line {ids[Key(id)]} and on line {line}; each request needs its own custom_id");
            }
        }

        return new BatchInput(path, ids, requests, maxLineBytes);
    }

    /// <summary>Whether a <c>custom_id</c> is one of the input's.</summary>
    public bool Has(string customId) => _ids.ContainsKey(Key(customId));

    /// <summary>The non-blank lines in order, read.</summary>
    public IEnumerable<BatchRequestLine> Lines() => JsonlLines.Read(Path, _maxLineBytes).Select(l => l.Text is { } text
        ? BatchRequestLine.Parse(l.Line, text)
        : new BatchRequestLine(l.Line, null, null, null, new BatchError(l.Problem!.Contains("UTF-8", StringComparison.Ordinal) ? "invalid_json" : "request_too_large", l.Problem, l.Line)));

    /// <summary>Requests of the input that <paramref name="output"/> does not answer yet (one more pass over the file).</summary>
    public int Unanswered(BatchOutput output) => JsonlLines.Read(Path, _maxLineBytes)
        .Count(l => !(l.Text is { } text && CustomIdOf(text) is { } id ? output.IsAnswered(id) : output.IsAnswered(l.Line)));

    /// <summary>A 128-bit key of a <c>custom_id</c> (SHA-256's first 16 bytes).</summary>
    public static UInt128 Key(string customId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(customId), hash);
        return BinaryPrimitives.ReadUInt128LittleEndian(hash);
    }

    // The top-level custom_id of a line, read without building the document; null for a line that is not a JSON object
    // with a non-empty string custom_id (its answer is keyed by its line).
    private static string? CustomIdOf(string text)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(text));
        string? id = null;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isId = reader.ValueTextEquals("custom_id"u8);
                reader.Read();
                if (isId)
                {
                    id = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }

                reader.Skip();
            }

            // The rest must be well-formed too: a line that is not JSON has no custom_id, as BatchRequestLine reads it.
            while (reader.Read())
            {
            }

            return id is { Length: > 0 } ? id : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }
}
