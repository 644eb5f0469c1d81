using System.Globalization;

namespace DistributedInference.Models.Runtime;

/// <summary>Free memory of a device as its node sees it, for planners: what a node offers when it offers its devices.</summary>
public static class DeviceMemory
{
    /// <summary>
    /// Bytes free on <paramref name="device"/>: for the CPU, Linux's MemAvailable (/proc/meminfo), or less where the
    /// process's memory cgroup or one above it (v2 <c>memory.max</c> and <c>memory.high</c>, v1 <c>memory.limit_in_bytes</c>:
    /// a container's, a pod's or a systemd slice's limit) leaves less, its inactive file cache counted as free (as kubelet's
    /// working set does); -1 where unknown (another OS, or a CUDA device: libtorch's free-memory query is not exposed by TorchSharp).
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
        return (File.Exists("/proc/self/cgroup") ? CgroupHeadroom(File.ReadLines("/proc/self/cgroup")) : null) is { } headroom ? Math.Min(available, headroom) : available;
    }

    /// <summary>
    /// The least headroom (limit less usage, inactive file cache not counted as used) of a process's memory cgroup and of
    /// every cgroup above it, where any sets a limit: v2 (<c>0::/path</c>: <c>memory.max</c>, <c>memory.high</c>,
    /// <c>memory.current</c>, <c>memory.stat</c>'s <c>inactive_file</c>) or v1 (<c>N:memory:/path</c> under
    /// <c>memory/</c>: <c>memory.limit_in_bytes</c>, <c>memory.usage_in_bytes</c>, <c>total_inactive_file</c>).
    /// </summary>
    /// <param name="procSelfCgroup">The lines of <c>/proc/self/cgroup</c>.</param>
    /// <param name="mount">Where the cgroup file systems are mounted.</param>
    /// <returns>Bytes; null where no limit is set or nothing can be read.</returns>
    public static long? CgroupHeadroom(IEnumerable<string> procSelfCgroup, string mount = "/sys/fs/cgroup")
    {
        try
        {
            long? least = null;
            foreach (var entry in procSelfCgroup)
            {
                var parts = entry.Split(':', 3);
                if (parts.Length < 3)
                {
                    continue;
                }

                var (root, limits, usage, reclaimable) = parts[1] == string.Empty
                    ? (mount, new[] { "memory.max", "memory.high" }, "memory.current", "inactive_file")
                    : parts[1].Split(',').Contains("memory")
                        ? (Path.Combine(mount, "memory"), new[] { "memory.limit_in_bytes" }, "memory.usage_in_bytes", "total_inactive_file")
                        : (null, [], string.Empty, string.Empty);
                if (root is null)
                {
                    continue;
                }

                // The cgroup's folder and each one above it (inside a container the folder may be the mount itself).
                var path = parts[2].Trim('/');
                while (true)
                {
                    if (Headroom(Path.Combine(root, path), limits, usage, reclaimable) is { } headroom)
                    {
                        least = Math.Min(least ?? long.MaxValue, headroom);
                    }

                    if (path.Length == 0)
                    {
                        break;
                    }

                    var cut = path.LastIndexOf('/');
                    path = cut < 0 ? string.Empty : path[..cut];
                }
            }

            return least;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    // A limit of "max" or near 2^63 (v1's "none") is no limit.
    private static long? Headroom(string folder, string[] limitFiles, string usageFile, string reclaimableKey)
    {
        var usagePath = Path.Combine(folder, usageFile);
        if (!File.Exists(usagePath) || !long.TryParse(File.ReadAllText(usagePath).Trim(), CultureInfo.InvariantCulture, out var usage))
        {
            return null;
        }

        long? limit = null;
        foreach (var file in limitFiles.Select(f => Path.Combine(folder, f)).Where(File.Exists))
        {
            if (long.TryParse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture, out var value) && value < (1L << 60))
            {
                limit = Math.Min(limit ?? long.MaxValue, value);
            }
        }

        if (limit is null)
        {
            return null;
        }

        var stat = Path.Combine(folder, "memory.stat");
        var inactive = File.Exists(stat)
            ? File.ReadLines(stat).Select(l => l.Split(' ')).Where(f => f.Length == 2 && f[0] == reclaimableKey)
                .Select(f => long.TryParse(f[1], CultureInfo.InvariantCulture, out var v) ? v : 0).FirstOrDefault()
            : 0;
        return Math.Max(0, limit.Value - Math.Max(0, usage - inactive));
    }
}
