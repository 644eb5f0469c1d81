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

            try
            {
                torch.InitializeDeviceType(DeviceType.CPU);
            }
            catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException)
            {
                throw new InvalidInputException(
                    $"libtorch could not be loaded{(folder is null ? string.Empty : $" from {folder}")}: {FirstLine(e.Message)}", e);
            }

            _initialized = true;
        }
    }

    /// <summary>Checks that a folder holds libtorch (a PyTorch install's <c>torch/lib</c>), without loading it.</summary>
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
    }

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
