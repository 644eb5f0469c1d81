using System.Globalization;

namespace DistributedInference.Models.Runtime;

/// <summary>Free memory of a device as its node sees it, for planners: what a node offers when it offers its devices.</summary>
public static class DeviceMemory
{
    /// <summary>
    /// Bytes free on <paramref name="device"/>: for the CPU, Linux's MemAvailable (/proc/meminfo), or less where the
    /// process's memory cgroup (v2 <c>memory.max</c>, v1 <c>memory.limit_in_bytes</c>: a container's or a pod's limit) leaves
    /// less; -1 where unknown (another OS, or a CUDA device: libtorch's free-memory query is not exposed by TorchSharp).
    /// </summary>
    public static long FreeBytes(DeviceName device)
    {
        if (device != DeviceName.Cpu || !File.Exists("/proc/meminfo"))
        {
            return -1;
        }

        var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
        var value = line?["MemAvailable:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (value is not { Length: > 0 } || !long.TryParse(value[0], CultureInfo.InvariantCulture, out var kib))
        {
            return -1;
        }

        var available = kib * 1024;
        return CgroupHeadroom() is { } headroom ? Math.Min(available, headroom) : available;
    }

    // The memory cgroup's limit less its usage, where a limit is set; null otherwise.
    private static long? CgroupHeadroom()
    {
        try
        {
            foreach (var entry in File.Exists("/proc/self/cgroup") ? File.ReadLines("/proc/self/cgroup") : [])
            {
                var parts = entry.Split(':', 3);
                if (parts.Length < 3)
                {
                    continue;
                }

                var path = parts[2].TrimStart('/');
                var headroom = parts[1] == string.Empty
                    ? Headroom(["/sys/fs/cgroup/" + path, "/sys/fs/cgroup"], "memory.max", "memory.current")
                    : parts[1].Split(',').Contains("memory")
                        ? Headroom(["/sys/fs/cgroup/memory/" + path, "/sys/fs/cgroup/memory"], "memory.limit_in_bytes", "memory.usage_in_bytes")
                        : null;
                if (headroom is not null)
                {
                    return headroom;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    // A limit of "max" or near 2^63 (v1's "none") is no limit.
    private static long? Headroom(string[] folders, string limitFile, string usageFile)
    {
        foreach (var folder in folders)
        {
            var (limitPath, usagePath) = (Path.Combine(folder, limitFile), Path.Combine(folder, usageFile));
            if (File.Exists(limitPath) && File.Exists(usagePath))
            {
                return long.TryParse(File.ReadAllText(limitPath).Trim(), CultureInfo.InvariantCulture, out var limit) && limit < (1L << 60)
                    && long.TryParse(File.ReadAllText(usagePath).Trim(), CultureInfo.InvariantCulture, out var usage)
                    ? Math.Max(0, limit - usage)
                    : null;
            }
        }

        return null;
    }
}
