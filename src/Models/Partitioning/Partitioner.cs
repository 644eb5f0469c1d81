using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;

namespace DistributedInference.Models.Partitioning;

/// <summary>
/// Cuts a staged model's layers into one contiguous stage per device: at named split points (each name starts a
/// stage, as accelerate's <c>split_points</c>); <c>auto</c>: the cut that makes the largest stage by parameter bytes
/// as small as possible (memory); or <c>compute</c>: the same by estimated FLOPs per token (speed, for models that
/// describe their compute). Never an empty stage.
/// </summary>
public static class Partitioner
{
    public const string Auto = "auto";
    public const string Compute = "compute";

    /// <summary>How many stages named split points make (one more than the names); null for <c>auto</c> and <c>compute</c>, which use every device.</summary>
    public static int? NamedStageCount(string splitPoints) =>
        splitPoints.Trim().ToLowerInvariant() is Auto or Compute ? null : SplitPointNames(splitPoints).Length + 1;

    public static PipelinePlan Plan(IReadOnlyList<StagedLayerInfo> layers, IReadOnlyList<DeviceName> devices, string splitPoints)
    {
        if (devices.Count == 0)
        {
            throw new InvalidInputException("a pipeline needs at least one device");
        }

        if (devices.Count > layers.Count)
        {
            throw new InvalidInputException($"{devices.Count} stages but the model has only {layers.Count} layers ({string.Join(", ", layers.Select(l => l.Name))})");
        }

        var rule = splitPoints.Trim().ToLowerInvariant();
        if (rule == Compute && layers.All(l => l.FlopsPerToken == 0))
        {
            throw new InvalidInputException("this model does not describe its compute: use --split-points auto or named layers");
        }

        var starts = rule switch
        {
            Auto => Balanced(layers.Select(l => l.ParameterBytes).ToList(), devices.Count),
            Compute => Balanced(layers.Select(l => l.FlopsPerToken).ToList(), devices.Count),
            _ => Named(layers, splitPoints, devices.Count),
        };

        var stages = new List<StageAssignment>();
        for (var s = 0; s < starts.Count; s++)
        {
            var first = starts[s];
            var end = s + 1 < starts.Count ? starts[s + 1] : layers.Count;
            var range = layers.Skip(first).Take(end - first).ToList();
            stages.Add(new StageAssignment(s, first, end - first, range.Select(l => l.Name).ToList(), range.Sum(l => l.ParameterBytes), range.Sum(l => l.FlopsPerToken), devices[s]));
        }

        return new PipelinePlan(stages);
    }

    private static string[] SplitPointNames(string splitPoints) =>
        splitPoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static List<int> Named(IReadOnlyList<StagedLayerInfo> layers, string splitPoints, int stageCount)
    {
        var names = SplitPointNames(splitPoints);
        var starts = new List<int> { 0 };
        foreach (var name in names)
        {
            var index = layers.ToList().FindIndex(l => l.Name == name);
            if (index < 0)
            {
                throw new InvalidInputException($"unknown split point '{name}': layers are {string.Join(", ", layers.Select(l => l.Name))}");
            }

            if (index <= starts[^1])
            {
                throw new InvalidInputException($"split point '{name}' would leave a stage empty: give split points in layer order, after the first layer");
            }

            starts.Add(index);
        }

        if (starts.Count != stageCount)
        {
            throw new InvalidInputException($"{names.Length} split points make {starts.Count} stages, but {stageCount} devices were given");
        }

        return starts;
    }

    // Linear partition: best[k][i] = the smallest possible largest stage (by weight) when layers [0, i) form k stages.
    private static List<int> Balanced(IReadOnlyList<long> weights, int stageCount)
    {
        var n = weights.Count;
        var prefix = new long[n + 1];
        for (var i = 0; i < n; i++)
        {
            prefix[i + 1] = prefix[i] + weights[i];
        }

        var best = new long[stageCount + 1, n + 1];
        var cut = new int[stageCount + 1, n + 1];
        for (var i = 0; i <= n; i++)
        {
            best[1, i] = prefix[i];
        }

        for (var k = 2; k <= stageCount; k++)
        {
            for (var i = k; i <= n; i++)
            {
                best[k, i] = long.MaxValue;
                for (var j = k - 1; j < i; j++)
                {
                    var largest = Math.Max(best[k - 1, j], prefix[i] - prefix[j]);
                    if (largest < best[k, i])
                    {
                        best[k, i] = largest;
                        cut[k, i] = j;
                    }
                }
            }
        }

        var starts = new List<int>();
        var end = n;
        for (var k = stageCount; k >= 2; k--)
        {
            end = cut[k, end];
            starts.Add(end);
        }

        starts.Add(0);
        starts.Reverse();
        return starts;
    }
}
