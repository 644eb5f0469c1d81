using System.Text;
using System.Text.Json;
using DistributedInference.Models;

namespace DistributedInference.Host.Batch;

/// <summary>
/// The batch output file (OpenAI's batch output JSONL), which is also the batch's journal: a request is done exactly
/// when its line is in the file. Each line is written whole with one <c>write</c> and handed to the OS at once (a killed
/// process loses nothing written), and the file is synced to disk every second and at the end (a machine crash loses at
/// most the last second). Opening an existing file resumes: every complete line's <c>custom_id</c> (or, for an input
/// line without a readable one, its <c>error.line</c>) counts as answered, and a torn last line (no newline, or not
/// JSON) is cut off. Nothing is ever rewritten in place, so no line can be lost or doubled.
/// </summary>
public sealed class BatchOutput : IDisposable
{
    private static readonly TimeSpan SyncEvery = TimeSpan.FromSeconds(1);

    private readonly FileStream _file;
    private readonly HashSet<UInt128> _answeredIds;
    private readonly HashSet<long> _answeredLines;
    private long _lastSync = Environment.TickCount64;

    private BatchOutput(FileStream file, HashSet<UInt128> ids, HashSet<long> lines, long cutBytes)
    {
        _file = file;
        _answeredIds = ids;
        _answeredLines = lines;
        CutBytes = cutBytes;
    }

    /// <summary>Lines the file held when opened (requests answered by earlier runs).</summary>
    public int Resumed => _answeredIds.Count + _answeredLines.Count;

    /// <summary>Bytes of a torn last line cut off when opened (0: none).</summary>
    public long CutBytes { get; }

    /// <summary>Opens <paramref name="path"/> to resume (<paramref name="restart"/> false) or empties it.</summary>
    /// <exception cref="InvalidInputException">A line before the last is not a batch output line, or the file answers
    /// requests that are not in <paramref name="input"/> (another batch's output): give --restart or another --output.</exception>
    public static BatchOutput Open(string path, BatchInput input, bool restart)
    {
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        var file = new FileStream(path, restart ? FileMode.Create : FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None);
        try
        {
            var ids = new HashSet<UInt128>();
            var lines = new HashSet<long>();
            var good = Read(file, path, input, ids, lines);
            var cut = file.Length - good;
            if (cut > 0)
            {
                file.SetLength(good);
                file.Flush(flushToDisk: true);
            }

            file.Seek(0, SeekOrigin.End);
            return new BatchOutput(file, ids, lines, cut);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Whether an earlier run answered this input line.</summary>
    public bool IsAnswered(BatchRequestLine line) =>
        line.CustomId is { } id ? _answeredIds.Contains(BatchInput.Key(id)) : _answeredLines.Contains(line.Line);

    /// <summary>Appends one output line (JSON without a newline) and hands it to the OS.</summary>
    public void Append(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json + "\n");
        _file.Write(bytes);
        _file.Flush(flushToDisk: false);
        if (Environment.TickCount64 - _lastSync >= SyncEvery.TotalMilliseconds)
        {
            Sync();
        }
    }

    /// <summary>Syncs what was appended to the disk.</summary>
    public void Sync()
    {
        _file.Flush(flushToDisk: true);
        _lastSync = Environment.TickCount64;
    }

    public void Dispose()
    {
        Sync();
        _file.Dispose();
    }

    // The byte length of the file's complete, readable lines; a bad line that is not the last is an error.
    private static long Read(FileStream file, string path, BatchInput input, HashSet<UInt128> ids, HashSet<long> lines)
    {
        file.Seek(0, SeekOrigin.Begin);
        var buffer = new byte[1 << 16];
        var line = new MemoryStream();
        long offset = 0;
        long good = 0;
        long number = 0;
        string? pending = null;
        int read;
        while ((read = file.Read(buffer)) > 0)
        {
            for (var i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)'\n')
                {
                    line.WriteByte(buffer[i]);
                    continue;
                }

                number++;
                if (pending is not null)
                {
                    throw new InvalidInputException($"--output {path}: line {number - 1} is not a batch output line ({pending}); give --restart to start over or another --output");
                }

                pending = Answer(line, input, ids, lines, path);
                if (pending is null)
                {
                    good = offset + i + 1;
                }

                line.SetLength(0);
            }

            offset += read;
        }

        return good;
    }

    // Records the answered request of one line; returns why the line is not an output line, or null.
    private static string? Answer(MemoryStream line, BatchInput input, HashSet<UInt128> ids, HashSet<long> lines, string path)
    {
        try
        {
            using var document = JsonDocument.Parse(line.GetBuffer().AsMemory(0, (int)line.Length));
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return "not a JSON object";
            }

            if (BatchRequestLine.CustomIdOf(root) is { } id)
            {
                if (!input.Has(id))
                {
                    throw new InvalidInputException($"--output {path} answers custom_id '{id}', which is not in --input {input.Path}: it is another batch's output; give --restart to overwrite it or another --output");
                }

                ids.Add(BatchInput.Key(id));
                return null;
            }

            if (root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("line", out var number) && number.TryGetInt64(out var n))
            {
                lines.Add(n);
                return null;
            }

            return "no custom_id and no error.line";
        }
        catch (JsonException e)
        {
            return e.Message;
        }
    }
}
