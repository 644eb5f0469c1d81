using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace DistributedInference.Models.Loading;

/// <summary>
/// A digest of what a Hugging Face model folder makes a device compute from token ids: its weights and the configuration
/// that says how to use them, never its name or path. SHA-256 over, in ordinal order of their paths relative to the
/// folder, each file's relative path and the SHA-256 of its bytes, for every <c>*.safetensors</c> file (headers and
/// tensors: the content, not only the layout) and every <c>*.json</c> file but the tokenizer's (<see cref="TokenizerFiles"/>:
/// prompts are tokenized where a job is submitted, so they do not change what a device answers), at most
/// <see cref="MaxDepth"/> folders deep (sentence-transformers keep modules in sub-folders); hidden files and folders
/// (<c>.git</c>, <c>.cache</c>) are skipped.
/// </summary>
/// <remarks>
/// Reading every weight byte costs about what loading them does (see docs/design.md, "Model identity", for the rate
/// measured here), so each file's digest is computed once and kept: in memory for the process, keyed by the file's
/// resolved path, size and last write time (several devices of one node, and every stage host and replica of a test
/// cluster, hash a file once); and, for files of at least <see cref="DiskCacheMinimumBytes"/>, in a per-user cache folder
/// (<see cref="DefaultCacheFolder"/>), one small entry per weight file under the SHA-256 of its path, holding its size,
/// last write time and digest. The checkpoint folder itself is never written: model folders are often read-only (a
/// shared mount, a container image, another user's Hugging Face cache), and a file written beside the weights would
/// change the folder a user copies, syncs or checksums. An entry is used only while the file's size and last write time
/// are the ones it was computed for (the quick check rsync and make rely on), and only for files last written more than
/// <see cref="RacyWindow"/> before they were hashed (git's rule for racily clean files): rewriting a file moves its last
/// write time, so only a tool that restores an older time on a file of the same size would be fooled; deleting the cache
/// folder is always safe. A cache folder that cannot be written (no home, read-only) is not an error: the digest is then
/// computed once per process.
/// </remarks>
public sealed class CheckpointDigest
{
    /// <summary>Files of this size or more have their digest kept on disk too; smaller ones hash in milliseconds.</summary>
    public const long DiskCacheMinimumBytes = 64L << 20;

    /// <summary>
    /// Files last written less than this long ago are hashed on each call, never kept: a rewrite within the file system's
    /// timestamp granularity (a few milliseconds on ext4, 2 s on FAT) would leave size and last write time unchanged.
    /// </summary>
    public static readonly TimeSpan RacyWindow = TimeSpan.FromSeconds(2);

    /// <summary>How many folders below the checkpoint folder are searched.</summary>
    public const int MaxDepth = 3;

    /// <summary>The tokenizer's files, which a device never reads.</summary>
    public static readonly IReadOnlySet<string> TokenizerFiles = new HashSet<string>(StringComparer.Ordinal)
    {
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "chat_template.json",
    };

    private readonly ConcurrentDictionary<(string Path, long Size, long Ticks), Lazy<byte[]>> _files = new();
    private readonly string? _cacheFolder;
    private readonly long _diskCacheMinimumBytes;
    private int _filesHashed;

    /// <param name="cacheFolder">Where digests of large files are kept between processes; null: in memory only.</param>
    /// <param name="diskCacheMinimumBytes">The size from which a file's digest is kept in <paramref name="cacheFolder"/>.</param>
    public CheckpointDigest(string? cacheFolder, long diskCacheMinimumBytes = DiskCacheMinimumBytes)
    {
        _cacheFolder = cacheFolder;
        _diskCacheMinimumBytes = diskCacheMinimumBytes;
    }

    /// <summary>The process's digests, kept on disk in <see cref="DefaultCacheFolder"/>.</summary>
    public static CheckpointDigest Shared { get; } = new(DefaultCacheFolder());

    /// <summary>How many files this instance has read whole to hash them (a cached digest reads nothing).</summary>
    public int FilesHashed => Volatile.Read(ref _filesHashed);

    /// <summary>
    /// <c>$XDG_CACHE_HOME/distributed-inference/checkpoint-digests</c> (else <c>~/.cache/...</c>; on Windows the local
    /// application data folder); null when there is no home to put it in.
    /// </summary>
    public static string? DefaultCacheFolder()
    {
        var root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : OperatingSystem.IsWindows() ? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData)
            : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) is { Length: > 0 } home ? Path.Combine(home, ".cache")
            : null;
        return root is null ? null : Path.Combine(root, "distributed-inference", "checkpoint-digests");
    }

    /// <summary>The folder's digest: 64 lower-case hex digits.</summary>
    /// <exception cref="InvalidInputException">The folder does not exist, or a file in it cannot be read.</exception>
    public string Of(string folder)
    {
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
        {
            throw new InvalidInputException($"{folder}: no such model folder");
        }

        try
        {
            var options = new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = MaxDepth, AttributesToSkip = FileAttributes.Hidden, IgnoreInaccessible = false };
            var files = Directory.EnumerateFiles(root, "*", options)
                .Select(path => (Path: path, Relative: Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/')))
                .Where(file => Describes(file.Relative))
                .OrderBy(file => file.Relative, StringComparer.Ordinal)
                .ToList();
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            foreach (var file in files)
            {
                hash.AppendData(Encoding.UTF8.GetBytes(file.Relative + "\n"));
                hash.AppendData(OfFile(file.Path));
            }

            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"{folder}: cannot read the model's files to identify it: {e.Message}");
        }
    }

    /// <summary>
    /// The SHA-256 of one file's bytes, computed once per path, size and last write time; a file written less than
    /// <see cref="RacyWindow"/> ago is hashed on every call and its digest is never kept.
    /// </summary>
    public byte[] OfFile(string path)
    {
        var target = Path.GetFullPath(File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path);
        var info = new FileInfo(target);
        var key = (target, info.Length, info.LastWriteTimeUtc.Ticks);
        if (_files.TryGetValue(key, out var known))
        {
            return known.Value;
        }

        // Git's "racy clean" rule: file systems stamp writes with a coarse clock, so a file rewritten at the same size
        // within one tick of the version hashed would keep its key; only files older than that are kept.
        return info.LastWriteTimeUtc > DateTime.UtcNow - RacyWindow
            ? Compute(key, keep: false)
            : _files.GetOrAdd(key, k => new Lazy<byte[]>(() => Cached(k) ?? Compute(k, keep: true))).Value;
    }

    // Weights and the configuration; not the tokenizer, not README.md, not other formats' copies (.bin, .onnx, .gguf).
    private static bool Describes(string relative)
    {
        var name = relative[(relative.LastIndexOf('/') + 1)..];
        return name.EndsWith(".safetensors", StringComparison.Ordinal)
            || (name.EndsWith(".json", StringComparison.Ordinal) && !TokenizerFiles.Contains(name));
    }

    private byte[] Compute((string Path, long Size, long Ticks) key, bool keep)
    {
        Interlocked.Increment(ref _filesHashed);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var stream = new FileStream(key.Path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
        var buffer = new byte[1 << 20];
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, read);
        }

        var digest = hash.GetHashAndReset();
        if (keep)
        {
            Store(key, digest);
        }

        return digest;
    }

    // An entry: "v1 <size> <last write ticks> <digest> <path>", in a file named by the SHA-256 of the path.
    private string? EntryPath((string Path, long Size, long Ticks) key) =>
        _cacheFolder is null || key.Size < _diskCacheMinimumBytes
            ? null
            : Path.Combine(_cacheFolder, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key.Path))));

    private static string Entry((string Path, long Size, long Ticks) key, byte[] digest) =>
        string.Create(CultureInfo.InvariantCulture, $"v1 {key.Size} {key.Ticks} {Convert.ToHexStringLower(digest)} {key.Path}");

    private byte[]? Cached((string Path, long Size, long Ticks) key)
    {
        if (EntryPath(key) is not { } entry)
        {
            return null;
        }

        try
        {
            var parts = File.ReadAllText(entry).Split(' ', 5);
            return parts is ["v1", var size, var ticks, { Length: 64 } digest, var path]
                && size == key.Size.ToString(CultureInfo.InvariantCulture) && ticks == key.Ticks.ToString(CultureInfo.InvariantCulture) && path == key.Path
                ? Convert.FromHexString(digest)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    private void Store((string Path, long Size, long Ticks) key, byte[] digest)
    {
        if (EntryPath(key) is not { } entry)
        {
            return;
        }

        try
        {
            Directory.CreateDirectory(_cacheFolder!);
            AtomicFile.Write(entry, stream =>
            {
                using var writer = new StreamWriter(stream, new UTF8Encoding(false));
                writer.Write(Entry(key, digest));
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The cache is only a shortcut: without it the digest is computed again by the next process.
        }
    }
}
