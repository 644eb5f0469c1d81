using System.Globalization;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// What a stage host needs to load its stage: for each stage count, the plan's stages are built one after another in
/// this process (CPU) and each one's rise of the resident peak (VmHWM, reset before each) is printed against its weights.
/// </summary>
public static class StageMemoryBenchmark
{
    public static async Task Run(string model, IReadOnlyList<int> stageCounts, Precision dtype, TextWriter output)
    {
        LibTorch.Initialize();
        var type = dtype.ToScalarType();
        var source = AutoModelSource.Resolve(model);
        var staged = source.LoadStaged(InferenceTask.Logits);
        using var owned = staged as IDisposable;
        await output.WriteLineAsync(Invariant($"stage memory, {source.Name} ({source.ModelType}), {dtype.Name()}, CPU; VmRSS before loading {ProcessMemory.ResidentBytes() / 1e6:F0} MB:"));
        foreach (var count in stageCounts)
        {
            var plan = Partitioner.Plan(staged.Layers, Enumerable.Repeat(DeviceName.Cpu, count).ToList(), Partitioner.Auto);
            var (loads, stages) = StageLoadMeasurement.LoadEach(staged, plan, type);
            foreach (var load in loads)
            {
                var names = plan.Stages[load.Stage].LayerNames;
                await output.WriteLineAsync(Invariant($"  {count} stages, stage {load.Stage} ({(names.Count == 1 ? names[0] : $"{names[0]} .. {names[^1]}")}): weights {load.WeightBytes / 1e6:F0} MB, peak rise {load.PeakRise / 1e6:F0} MB ({load.Ratio:F2}x)"));
            }

            foreach (var stage in stages)
            {
                stage.Dispose();
            }
        }
    }

    /// <summary>Stage counts as "2,4".</summary>
    /// <exception cref="InvalidInputException">Not positive whole numbers.</exception>
    public static IReadOnlyList<int> ParseCounts(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new InvalidInputException($"--stages: {s} is not a positive whole number"))
            .ToList();

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
