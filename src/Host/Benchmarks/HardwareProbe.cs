using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// What the device can do, measured through TorchSharp in the bench's own run: n^3 matmuls in the run's dtype, the
/// fastest of several taken (the matmul peak the model's FLOP/s are compared with: on a shared machine a measurement can
/// only come out below the peak, so the best one is the closest), and a large float32 tensor's sum (bytes read per
/// second: what decoding, which reads every weight once per step, is bound by) and copy (bytes read + written per second).
/// </summary>
public static class HardwareProbe
{
    /// <summary>
    /// One measurement: FLOP/s of the fastest matmul, bytes/s read by the sum, bytes/s read + written by the copy, and
    /// the FLOP/s of every matmul timed.
    /// </summary>
    public sealed record Result(double MatmulFlopsPerSecond, double ReadBytesPerSecond, double CopyBytesPerSecond, IReadOnlyList<double> MatmulTrials);

    /// <param name="matmulSize">n of the n x n by n x n matmul.</param>
    /// <param name="bandwidthBytes">Size of the tensor summed and copied; larger than the caches.</param>
    /// <param name="matmulTrials">Matmuls timed after one untimed; the fastest is the peak.</param>
    public static Result Measure(Device device, ScalarType dtype, int matmulSize, long bandwidthBytes, int matmulTrials = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(matmulTrials, 1);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = randn(matmulSize, matmulSize, device: device).to(dtype);
        var b = randn(matmulSize, matmulSize, device: device).to(dtype);
        a.matmul(b);
        var flops = 2.0 * matmulSize * matmulSize * matmulSize;
        var trials = Enumerable.Range(0, matmulTrials).Select(_ => flops / Time(device, () => a.matmul(b))).ToList();
        var elements = bandwidthBytes / sizeof(float);
        var big = ones(elements, ScalarType.Float32, device);
        var other = empty_like(big);
        big.sum();
        var read = Time(device, () => big.sum());
        other.copy_(big);
        var copy = Time(device, () => other.copy_(big));
        return new Result(trials.Max(), 4.0 * elements / read, 8.0 * elements / copy, trials);
    }

    /// <summary>Waits for the device's queued work (CUDA); nothing to wait for on the CPU.</summary>
    public static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA)
        {
            cuda.synchronize(device);
        }
    }

    /// <summary>
    /// Which BLAS the loaded libtorch uses: oneMKL (its version string) when libtorch_cpu exports MKL's version call
    /// (official libtorch and PyTorch wheels link MKL statically), OpenBLAS when any mapped library exports
    /// <c>openblas_get_config</c>, else unknown.
    /// </summary>
    public static string Blas()
    {
        foreach (var path in LibTorch.MappedLibraries().Where(p => Path.GetFileName(p) == "libtorch_cpu.so"))
        {
            if (NativeLibrary.TryLoad(path, out var handle) && NativeLibrary.TryGetExport(handle, "MKL_Get_Version_String", out var export))
            {
                return "MKL (" + MklVersion(export) + ", linked into " + path + ")";
            }
        }

        foreach (var path in MappedBlasLibraries())
        {
            if (NativeLibrary.TryLoad(path, out var handle) && NativeLibrary.TryGetExport(handle, "openblas_get_config", out var export))
            {
                var config = Marshal.PtrToStringAnsi(Marshal.GetDelegateForFunctionPointer<OpenBlasConfig>(export)()) ?? string.Empty;
                return $"OpenBLAS ({config.Trim()}, {path})";
            }
        }

        return "unknown (neither MKL nor OpenBLAS found in the loaded libraries)";
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void MklVersionString([Out] byte[] buffer, int length);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint OpenBlasConfig();

    private static string MklVersion(nint export)
    {
        var buffer = new byte[256];
        Marshal.GetDelegateForFunctionPointer<MklVersionString>(export)(buffer, buffer.Length);
        return Encoding.ASCII.GetString(buffer).TrimEnd('\0', ' ');
    }

    private static IEnumerable<string> MappedBlasLibraries()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps))
        {
            return [];
        }

        return File.ReadLines(maps)
            .Select(line => line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length == 6 && Path.GetFileName(fields[5].Trim()).Contains("blas", StringComparison.OrdinalIgnoreCase))
            .Select(fields => fields[5].Trim())
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    private static double Time(Device device, Func<Tensor> work)
    {
        using var scope = NewDisposeScope();
        Synchronize(device);
        var clock = Stopwatch.StartNew();
        work();
        Synchronize(device);
        return clock.Elapsed.TotalSeconds;
    }
}
