namespace DistributedInference.Models.Runtime;

/// <summary>
/// This process's resident memory as Linux reports it in <c>/proc/self/status</c> (<c>VmRSS</c> now, <c>VmHWM</c> the
/// peak), and the peak's reset (<c>5</c> written to <c>/proc/self/clear_refs</c>): to measure what loading a stage costs.
/// </summary>
public static class ProcessMemory
{
    /// <summary>True where /proc/self/status exists (Linux).</summary>
    public static bool IsAvailable => File.Exists("/proc/self/status");

    /// <summary>Resident bytes now (VmRSS).</summary>
    /// <exception cref="PlatformNotSupportedException">Not on Linux.</exception>
    public static long ResidentBytes() => Read("VmRSS:");

    /// <summary>The peak of resident bytes since the process started or <see cref="ResetPeak"/> (VmHWM).</summary>
    /// <exception cref="PlatformNotSupportedException">Not on Linux.</exception>
    public static long PeakResidentBytes() => Read("VmHWM:");

    /// <summary>Sets the peak to the resident bytes now; false where the kernel does not allow it.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long Read(string key)
    {
        if (!IsAvailable)
        {
            throw new PlatformNotSupportedException("resident memory is read from /proc/self/status (Linux)");
        }

        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))
            ?? throw new PlatformNotSupportedException($"/proc/self/status has no {key}");
        var value = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(value[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }
}
