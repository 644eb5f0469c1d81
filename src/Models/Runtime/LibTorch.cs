using System.Runtime.InteropServices;
using TorchSharp;

namespace DistributedInference.Models.Runtime;

/// <summary>
/// Chooses which libtorch TorchSharp runs on, before its first call. By default it is the CPU libtorch shipped
/// with the program (beside it, or under runtimes/linux-x64/native in a build without a runtime identifier); <see cref="Initialize"/> with a folder (the <c>--libtorch DIR</c> option, or the
/// <c>DI_LIBTORCH</c> variable) loads one such as a PyTorch install's <c>torch/lib</c>, CUDA libraries included.
/// </summary>
public static class LibTorch
{
    public const string FolderVariable = "DI_LIBTORCH";

    /// <summary>
    /// The libtorch release (major.minor) TorchSharp 0.107 is built against, and so the PyTorch release whose
    /// <c>torch/lib</c> <c>--libtorch</c> takes: 2.10 (PyTorch 2.10.x). The CPU package this project ships is the same
    /// (libtorch-cpu-linux-x64 2.10.0 in Directory.Packages.props).
    /// </summary>
    public const string RequiredVersion = "2.10";

    // Dependency order: each library only needs the ones before it.
    private static readonly string[] LoadOrder =
        ["libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"];

    private static readonly string[] Required = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    private static readonly string[] Watched = [.. LoadOrder, "libLibTorchSharp.so"];

    private static readonly Lock Gate = new();
    private static string? _folder;
    private static bool _initialized;

    /// <summary>The folder libtorch was loaded from, or null for the one shipped beside the program.</summary>
    public static string? Folder => _folder;

    /// <summary>
    /// Loads libtorch once: from <paramref name="folder"/> if given, else from <c>DI_LIBTORCH</c> if set, else the
    /// shipped one. Calling again with the folder already in use is a no-op; another folder is an error.
    /// </summary>
    public static void Initialize(string? folder = null)
    {
        folder ??= Environment.GetEnvironmentVariable(FolderVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null;
        lock (Gate)
        {
            if (_initialized)
            {
                if (folder is not null && !SameFolder(folder, _folder))
                {
                    throw new InvalidInputException(
                        $"libtorch is already loaded from {_folder ?? "the program folder"}; --libtorch {folder} must come before any tensor work");
                }

                return;
            }

            if (folder is not null)
            {
                Preload(folder);
            }
            else if (!ShipsLibTorch())
            {
                // Without this check TorchSharp's fallback prints pages and copies libraries into the program folder.
                throw new InvalidInputException($"this build of di ships no libtorch: pass --libtorch DIR or set {FolderVariable}");
            }

            // TorchSharp writes its loader's trace (dozens of lines) to stdout when it fails: stdout is for results.
            var stdout = Console.Out;
            Console.SetOut(TextWriter.Null);
            try
            {
                torch.InitializeDeviceType(DeviceType.CPU);
            }
            catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException)
            {
                throw new InvalidInputException(
                    $"libtorch could not be loaded{(folder is null ? string.Empty : $" from {folder} (it must be libtorch {RequiredVersion}, PyTorch {RequiredVersion}.x)")}: {FirstLine(e.Message)}", e);
            }
            finally
            {
                Console.SetOut(stdout);
            }

            _initialized = true;
        }
    }

    /// <summary>
    /// Checks that a folder holds libtorch (a PyTorch install's <c>torch/lib</c>) of <see cref="RequiredVersion"/> when
    /// its version can be read (<see cref="FolderVersion"/>), without loading it: another version would fail inside
    /// TorchSharp's loader without saying why.
    /// </summary>
    /// <exception cref="InvalidInputException">No such folder, libraries missing, or another libtorch version (one line).</exception>
    public static void CheckFolder(string folder)
    {
        if (!Directory.Exists(folder))
        {
            throw new InvalidInputException($"--libtorch {folder}: no such folder");
        }

        var missing = Required.Where(name => !File.Exists(Path.Combine(folder, name))).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidInputException(
                $"--libtorch {folder}: not a libtorch folder, missing {string.Join(", ", missing)} (expected a PyTorch install's torch/lib)");
        }

        if (FolderVersion(folder) is { } version && !IsRequiredVersion(version))
        {
            throw new InvalidInputException(
                $"--libtorch {folder}: libtorch {version}, but this di runs on TorchSharp 0.107, which needs libtorch {RequiredVersion} (the torch/lib of a PyTorch {RequiredVersion}.x install)");
        }
    }

    /// <summary>
    /// The version of the libtorch in <paramref name="folder"/>, read from what its distribution puts beside it: a
    /// PyTorch install's <c>torch/version.py</c> (<c>__version__ = '2.10.0+cu128'</c>) for its <c>torch/lib</c>, or a
    /// libtorch archive's <c>build-version</c> (<c>2.10.0+cpu</c>) for its <c>lib</c>; null when neither is there.
    /// </summary>
    public static string? FolderVersion(string folder)
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(folder).TrimEnd('/'));
        if (parent is null)
        {
            return null;
        }

        var buildVersion = Path.Combine(parent, "build-version");
        if (File.Exists(buildVersion) && File.ReadLines(buildVersion).FirstOrDefault()?.Trim() is { Length: > 0 } built)
        {
            return built;
        }

        var versionPy = Path.Combine(parent, "version.py");
        if (File.Exists(versionPy))
        {
            foreach (var line in File.ReadLines(versionPy))
            {
                var parts = line.Split('=', 2, StringSplitOptions.TrimEntries);
                if (parts.Length == 2 && parts[0].Split(':')[0].Trim() == "__version__")
                {
                    return parts[1].Trim('\'', '"');
                }
            }
        }

        return null;
    }

    private static bool IsRequiredVersion(string version) =>
        version == RequiredVersion || version.StartsWith(RequiredVersion + ".", StringComparison.Ordinal) || version.StartsWith(RequiredVersion + "+", StringComparison.Ordinal);

    /// <summary>The files of the libtorch libraries this process has mapped (from /proc/self/maps).</summary>
    public static IReadOnlyList<string> MappedLibraries()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps))
        {
            return [];
        }

        return File.ReadLines(maps)
            .Select(line => line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length == 6 && Watched.Contains(Path.GetFileName(fields[5].Trim())))
            .Select(fields => fields[5].Trim())
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    // The CPU libtorch package's files lie beside the program (a build for a runtime identifier) or, in a build
    // without one, where the deps.json file sends the loader: runtimes/linux-x64/native.
    private static bool ShipsLibTorch() =>
        File.Exists(Path.Combine(AppContext.BaseDirectory, "libtorch_cpu.so"))
        || File.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libtorch_cpu.so"));

    // Loaded before TorchSharp's first call, these satisfy LibTorchSharp's dependencies by soname. TorchSharp's own
    // loader also probes the program folder for libtorch by path, so a program folder holding the shipped CPU
    // libtorch would map a second copy (the process then aborts on duplicate operator registrations).
    private static void Preload(string folder)
    {
        CheckFolder(folder);
        if (ShipsLibTorch())
        {
            throw new InvalidInputException(
                $"--libtorch {folder}: this build of di ships its own CPU libtorch, which would load twice; use a build made with -p:BringYourOwnLibTorch=true (README, \"GPUs\")");
        }

        foreach (var name in LoadOrder)
        {
            var path = Path.GetFullPath(Path.Combine(folder, name));
            if (!File.Exists(path))
            {
                continue;
            }

            try
            {
                NativeLibrary.Load(path);
            }
            catch (DllNotFoundException e)
            {
                throw new InvalidInputException($"--libtorch {folder}: cannot load {name}: {FirstLine(e.Message)}", e);
            }
        }

        _folder = Path.GetFullPath(folder);
    }

    private static bool SameFolder(string a, string? b) =>
        b is not null && string.Equals(Path.GetFullPath(a).TrimEnd('/'), b.TrimEnd('/'), StringComparison.Ordinal);

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}
