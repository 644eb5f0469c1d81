using System.Text;
using System.Text.Json;
using DistributedInference.Models;

namespace DistributedInference.Host.Batch;

/// <summary>
/// The batch output file (OpenAI's batch output JSONL), which is also the batch's journal: a request is done exactly
/// when its line is in the file. Each line is written whole with one <c>write</c> and handed to the OS at once (a killed
/// process loses nothing written), and the file is synced to disk every second and at the end (a machine crash loses at
/// most the last second). Opening an existing file resumes: every complete line's <c>custom_id</c> (or, for an input
/// line without a readable one, its <c>error.line</c>) counts as answered, and a torn last line (the start of an output line
/// without its newline) is cut off; any other line that is not a batch output line refuses the file. Nothing is ever rewritten in place, so no line can be lost or doubled. A lock on the file keeps a
/// second run off it while one writes.
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
    /// <exception cref="InvalidInputException">A line is not a batch output line (only a torn last one is cut), the file
    /// answers requests that are not in <paramref name="input"/> (another batch's output: give --restart or another
    /// --output), it is a folder, or another di batch is writing it.</exception>
    public static BatchOutput Open(string path, BatchInput input, bool restart)
    {
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        if (Directory.Exists(path))
        {
            throw new InvalidInputException($"--output {path} is a folder: give a file");
        }

        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None);
        try
        {
            try
            {
                // A record lock (fcntl) over the whole file: a second di batch on the same output is refused, while
                // readers (tail, a progress script) are not.
                if (!OperatingSystem.IsMacOS())
                {
                    file.Lock(0, long.MaxValue);
                }
            }
            catch (IOException)
            {
                throw new InvalidInputException($"--output {path} is being written by another di batch; wait for it, or give another --output");
            }

            if (restart)
            {
                file.SetLength(0);
                DeleteImages(PreparedImages.Folder(path));
            }

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

    // --restart: the images of the answers it empties go with them (only the PNG files this batch names, nothing else).
    private static void DeleteImages(string folder)
    {
        if (Directory.Exists(folder))
        {
            foreach (var png in Directory.EnumerateFiles(folder, "*.png"))
            {
                File.Delete(png);
            }
        }
    }

    /// <summary>Whether an earlier run answered this input line.</summary>
    public bool IsAnswered(BatchRequestLine line) => line.CustomId is { } id ? IsAnswered(id) : IsAnswered(line.Line);

    /// <summary>Whether an earlier run answered the request of this <c>custom_id</c>.</summary>
    public bool IsAnswered(string customId) => _answeredIds.Contains(BatchInput.Key(customId));

    /// <summary>Whether an earlier run answered this line of the input, which has no readable <c>custom_id</c>.</summary>
    public bool IsAnswered(long line) => _answeredLines.Contains(line);

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

    // The byte length of the file's complete lines, each of which must be a batch output line; what follows the last
    // newline is cut only when it is the start of one (a line torn by a crash), else the file is not a batch output.
    private static long Read(FileStream file, string path, BatchInput input, HashSet<UInt128> ids, HashSet<long> lines)
    {
        file.Seek(0, SeekOrigin.Begin);
        var buffer = new byte[1 << 16];
        var line = new MemoryStream();
        long good = 0;
        long number = 0;
        int read;
        while ((read = file.Read(buffer)) > 0)
        {
            var start = 0;
            for (var i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)'\n')
                {
                    continue;
                }

                line.Write(buffer, start, i - start);
                start = i + 1;
                number++;
                if (Answer(line, input, ids, lines, path) is { } problem)
                {
                    throw new InvalidInputException($"--output {path}: line {number} is not a batch output line ({problem}); give --restart to start over, or another --output");
                }

                good += line.Length + 1;
                line.SetLength(0);
            }

            line.Write(buffer, start, read - start);
        }

        if (line.Length > 0 && !line.GetBuffer().AsSpan(0, (int)line.Length).StartsWith(LineStart) && !LineStart.AsSpan().StartsWith(line.GetBuffer().AsSpan(0, (int)line.Length)))
        {
            throw new InvalidInputException($"--output {path}: its end is not a batch output line; give --restart to start over, or another --output");
        }

        return good;
    }

    // How every line this class writes starts (BatchWriter's JSON, id first).
    private static readonly byte[] LineStart = "{\"id\":\"batch_req_"u8.ToArray();

    // Records the answered request of one line; returns why the line is not a batch output line, or null.
    private static string? Answer(MemoryStream line, BatchInput input, HashSet<UInt128> ids, HashSet<long> lines, string path)
    {
        try
        {
            using var document = JsonDocument.Parse(line.GetBuffer().AsMemory(0, (int)line.Length));
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("response", out _) || !root.TryGetProperty("error", out var error))
            {
                return "no id, response and error";
            }

            if (BatchRequestLine.CustomIdOf(root) is { } customId)
            {
                if (!input.Has(customId))
                {
                    throw new InvalidInputException($"--output {path} answers custom_id '{customId}', which is not in --input {input.Path}: it is another batch's output; give --restart to overwrite it or another --output");
                }

                ids.Add(BatchInput.Key(customId));
                return null;
            }

            if (error.ValueKind == JsonValueKind.Object && error.TryGetProperty("line", out var number) && number.TryGetInt64(out var n))
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
