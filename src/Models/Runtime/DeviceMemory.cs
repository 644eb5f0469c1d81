namespace DistributedInference.Models.Runtime;

/// <summary>Free memory of a device as its node sees it, for planners: what a node offers when it offers its devices.</summary>
public static class DeviceMemory
{
    /// <summary>
    /// Bytes free on <paramref name="device"/>: for the CPU, Linux's MemAvailable (/proc/meminfo); -1 where unknown
    /// (another OS, or a CUDA device: libtorch's free-memory query is not exposed by TorchSharp).
    /// </summary>
    public static long FreeBytes(DeviceName device)
    {
        if (device != DeviceName.Cpu || !File.Exists("/proc/meminfo"))
        {
            return -1;
        }

        var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
        var value = line?["MemAvailable:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return value is { Length: > 0 } && long.TryParse(value[0], System.Globalization.CultureInfo.InvariantCulture, out var kib) ? kib * 1024 : -1;
    }
}
