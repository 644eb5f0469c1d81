using System.Globalization;
using System.Text.RegularExpressions;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Partitioning;

/// <summary>
/// Memory budgets per device, as Accelerate's <c>max_memory</c> gives them: <c>cpu=6GiB,cuda:0=20GiB</c>. Units:
/// B, KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB (powers of 1024); a bare number is bytes. Stages on the same
/// device share its budget.
/// </summary>
public sealed partial class MaxMemory
{
    private readonly Dictionary<string, long> _bytes;

    private MaxMemory(Dictionary<string, long> bytes) => _bytes = bytes;

    /// <summary>The budgets, by device name (<c>cpu</c>, <c>cuda:0</c>).</summary>
    public IReadOnlyDictionary<string, long> Bytes => _bytes;

    /// <exception cref="InvalidInputException">An entry that is not DEVICE=SIZE, an unknown device or unit, a device named twice (one line).</exception>
    public static MaxMemory Parse(string text)
    {
        var bytes = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = entry.Split('=', 2, StringSplitOptions.TrimEntries);
            var size = parts.Length == 2 ? Size().Match(parts[1]) : Match.Empty;
            if (!size.Success)
            {
                throw new InvalidInputException($"--max-memory: '{entry}' is not DEVICE=SIZE (e.g. cpu=6GiB,cuda:0=20GiB)");
            }

            var device = DeviceName.Parse(parts[0]).ToString();
            var unit = size.Groups[2].Value.ToUpperInvariant();
            double scale = unit switch
            {
                "" or "B" => 1,
                "KB" => 1e3,
                "MB" => 1e6,
                "GB" => 1e9,
                "TB" => 1e12,
                "KIB" => 1L << 10,
                "MIB" => 1L << 20,
                "GIB" => 1L << 30,
                "TIB" => 1L << 40,
                _ => throw new InvalidInputException($"--max-memory: unknown unit '{size.Groups[2].Value}' in '{entry}' (B, KB, MB, GB, KiB, MiB, GiB, ...)"),
            };
            if (!bytes.TryAdd(device, (long)(double.Parse(size.Groups[1].Value, CultureInfo.InvariantCulture) * scale)))
            {
                throw new InvalidInputException($"--max-memory: {device} is named twice");
            }
        }

        if (bytes.Count == 0)
        {
            throw new InvalidInputException("--max-memory: no budget given (e.g. cpu=6GiB,cuda:0=20GiB)");
        }

        return new MaxMemory(bytes);
    }

    /// <summary>The budget of a device.</summary>
    /// <exception cref="InvalidInputException">The device has none.</exception>
    public long Of(DeviceName device) => _bytes.TryGetValue(device.ToString(), out var bytes)
        ? bytes
        : throw new InvalidInputException($"--max-memory gives no budget for {device} (it gives {string.Join(", ", _bytes.Keys)})");

    /// <summary>Bytes as GiB with one decimal.</summary>
    public static string GiB(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F1} GiB");

    [GeneratedRegex(@"^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$")]
    private static partial Regex Size();
}
