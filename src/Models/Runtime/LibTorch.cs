using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace DistributedInference.Models.Runtime;

/// <summary>
/// Chooses which libtorch TorchSharp runs on, before its first call. By default it is the CPU libtorch shipped
/// beside the program; <see cref="UseFolder"/> (the <c>--libtorch DIR</c> option, or the <c>DI_LIBTORCH</c>
/// variable) loads one from a folder such as a PyTorch install's <c>torch/lib</c>, CUDA libraries included.
/// </summary>
public static class LibTorch
{
    public const string FolderVariable = "DI_LIBTORCH";

    private const string TorchSharpNative = "LibTorchSharp";

    // Dependency order: each library only needs the ones before it.
    private static readonly string[] LoadOrder =
        ["libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"];

    private static readonly string[] Required = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, IntPtr> Loaded = new(StringComparer.Ordinal);
    private static string? _folder;
    private static bool _initialized;

    /// <summary>The folder libtorch was loaded from, or null for the one shipped beside the program.</summary>
    public static string? Folder => _folder;

    /// <summary>True when the libtorch in use can run CUDA devices.</summary>
    public static bool CudaAvailable
    {
        get
        {
            Initialize();
            return torch.cuda.is_available();
        }
    }

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
                UseFolder(folder);
            }

            torch.InitializeDeviceType(DeviceType.CPU);
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

    private static void UseFolder(string folder)
    {
        CheckFolder(folder);

        foreach (var name in LoadOrder)
        {
            var path = Path.GetFullPath(Path.Combine(folder, name));
            if (!File.Exists(path))
            {
                continue;
            }

            try
            {
                Loaded[name] = NativeLibrary.Load(path);
            }
            catch (DllNotFoundException e)
            {
                throw new InvalidInputException($"--libtorch {folder}: cannot load {name}: {FirstLine(e.Message)}", e);
            }
        }

        _folder = Path.GetFullPath(folder);

        // TorchSharp asks for torch_cpu / torch_cuda / LibTorchSharp by name, which would map a second libtorch from
        // the program folder. Answer those names with the libraries loaded above; LibTorchSharp itself still comes
        // from the program folder, and its libtorch dependencies resolve to the already loaded copies by soname.
        NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        var file = name.StartsWith("lib", StringComparison.Ordinal) ? name : "lib" + name;
        file = file.EndsWith(".so", StringComparison.Ordinal) ? file : file + ".so";
        if (Loaded.TryGetValue(file, out var handle))
        {
            return handle;
        }

        if (name == TorchSharpNative)
        {
            var beside = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
            return NativeLibrary.Load(File.Exists(beside) ? beside : Path.Combine(Path.GetDirectoryName(assembly.Location)!, "libLibTorchSharp.so"));
        }

        return IntPtr.Zero;
    }

    private static bool SameFolder(string a, string? b) =>
        b is not null && string.Equals(Path.GetFullPath(a).TrimEnd('/'), b.TrimEnd('/'), StringComparison.Ordinal);

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}
