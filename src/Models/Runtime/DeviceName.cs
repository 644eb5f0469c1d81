using TorchSharp;

namespace DistributedInference.Models.Runtime;

/// <summary>A device by name: <c>cpu</c> or <c>cuda:N</c> (<c>cuda</c> alone means <c>cuda:0</c>).</summary>
public sealed record DeviceName(DeviceType Type, int Index)
{
    public static readonly DeviceName Cpu = new(DeviceType.CPU, -1);

    public bool IsCuda => Type == DeviceType.CUDA;

    public static DeviceName Parse(string text)
    {
        var trimmed = text.Trim().ToLowerInvariant();
        if (trimmed == "cpu")
        {
            return Cpu;
        }

        if (trimmed == "cuda")
        {
            return new DeviceName(DeviceType.CUDA, 0);
        }

        if (trimmed.StartsWith("cuda:", StringComparison.Ordinal) &&
            int.TryParse(trimmed.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
        {
            return new DeviceName(DeviceType.CUDA, index);
        }

        throw new InvalidInputException($"unknown device '{text}': use cpu or cuda:N");
    }

    /// <summary>Parses a comma-separated list such as <c>cpu,cpu</c> or <c>cuda:0,cuda:1</c>.</summary>
    /// <exception cref="InvalidInputException">An empty list, an empty entry (<c>cpu,,cpu</c>) or an unknown device.</exception>
    public static IReadOnlyList<DeviceName> ParseList(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.All(p => p.Length == 0))
        {
            throw new InvalidInputException("no device given: use cpu or cuda:N, comma-separated");
        }

        if (Array.IndexOf(parts, string.Empty) is var empty and >= 0)
        {
            throw new InvalidInputException($"devices '{text}': entry {empty + 1} is empty; give one device per comma-separated entry (cpu,cpu or cuda:0,cuda:1)");
        }

        return parts.Select(Parse).ToList();
    }

    /// <summary>The TorchSharp device, after checking that this libtorch has it.</summary>
    public torch.Device ToTorch()
    {
        LibTorch.Initialize();
        if (!IsCuda)
        {
            return torch.CPU;
        }

        if (!torch.cuda.is_available())
        {
            throw new InvalidInputException(
                $"{this} requested but CUDA is not available with this libtorch (CPU-only); pass --libtorch DIR pointing at a CUDA build's torch/lib");
        }

        var count = torch.cuda.device_count();
        if (Index >= count)
        {
            throw new InvalidInputException($"{this} requested but this machine has {count} CUDA device(s)");
        }

        return torch.device(DeviceType.CUDA, Index);
    }

    public override string ToString() => IsCuda ? $"cuda:{Index}" : "cpu";
}
