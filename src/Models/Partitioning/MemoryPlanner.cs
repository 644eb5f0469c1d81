using System.Globalization;
using System.Text;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;

namespace DistributedInference.Models.Partitioning;

/// <summary>A stage's memory: what it needs, and the share of its device's budget it may use.</summary>
public sealed record StageMemory(int Stage, DeviceName Device, long Weights, long Cache, long Activations, long Budget)
{
    /// <summary>Weights + cache + activations.</summary>
    public long Total => Weights + Cache + Activations;
}

/// <summary>A memory-aware plan: the stages, and each stage's memory against its budget.</summary>
public sealed record MemoryPlan(PipelinePlan Plan, IReadOnlyList<StageMemory> Memory)
{
    /// <summary>The plan as a table, each stage with weights + cache + activations = total of its budget.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        var lines = Plan.Describe().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        for (var s = 0; s < lines.Length; s++)
        {
            var m = Memory[s];
            text.AppendLine(CultureInfo.InvariantCulture, $"{lines[s]}; memory: weights {MaxMemory.GiB(m.Weights)} + KV cache {MaxMemory.GiB(m.Cache)} + activations {MaxMemory.GiB(m.Activations)} = {MaxMemory.GiB(m.Total)} of {MaxMemory.GiB(m.Budget)}");
        }

        return text.ToString();
    }
}

/// <summary>
/// Cuts a staged model within memory budgets (<c>--max-memory</c>, Accelerate's <c>max_memory</c>): each stage's
/// weights, key/value cache and activations must fit its share of its device's budget (stages on one device share it
/// equally); among the cuts that fit, the one whose fullest stage (need / share) is least full. A model that cannot fit
/// is refused before anything is loaded, saying by how much.
/// </summary>
public static class MemoryPlanner
{
    /// <param name="layers">The staged model's layers.</param>
    /// <param name="memory">Each layer's needs for the run (same order).</param>
    /// <param name="devices">One stage per device, in order.</param>
    /// <param name="budgets">The budgets.</param>
    /// <exception cref="InvalidInputException">A device without a budget; a model that needs more than the devices offer; no cut that fits.</exception>
    public static MemoryPlan Plan(IReadOnlyList<StagedLayerInfo> layers, IReadOnlyList<LayerMemory> memory, IReadOnlyList<DeviceName> devices, MaxMemory budgets)
    {
        if (devices.Count == 0 || devices.Count > layers.Count)
        {
            throw new InvalidInputException($"{devices.Count} stages for a model of {layers.Count} layers");
        }

        var shares = devices.Select(d => budgets.Of(d) / devices.Count(other => other == d)).ToList();
        var offered = devices.Distinct().Sum(budgets.Of);
        // A lower bound: every weight and cache byte, and the activations of the layer that makes the most (stages run
        // their layers one after another, so a stage needs its largest layer's activations, not their sum).
        var needed = memory.Sum(m => m.Weights + m.Cache) + memory.Max(m => m.Activations);
        if (needed > offered)
        {
            throw new InvalidInputException($"the model needs {MaxMemory.GiB(needed)} (weights {MaxMemory.GiB(memory.Sum(m => m.Weights))}, KV cache {MaxMemory.GiB(memory.Sum(m => m.Cache))}, activations {MaxMemory.GiB(memory.Max(m => m.Activations))}), the devices offer {MaxMemory.GiB(offered)} ({string.Join(", ", devices.Distinct().Select(d => $"{d}={MaxMemory.GiB(budgets.Of(d))}"))})");
        }

        var starts = LeastFull(memory, shares);
        var stages = new List<StageAssignment>();
        var stageMemory = new List<StageMemory>();
        for (var s = 0; s < starts.Count; s++)
        {
            var first = starts[s];
            var end = s + 1 < starts.Count ? starts[s + 1] : layers.Count;
            var range = layers.Skip(first).Take(end - first).ToList();
            var needs = memory.Skip(first).Take(end - first).ToList();
            stages.Add(new StageAssignment(s, first, end - first, range.Select(l => l.Name).ToList(), needs.Sum(l => l.Weights), range.Sum(l => l.FlopsPerToken), devices[s]));
            stageMemory.Add(new StageMemory(s, devices[s], needs.Sum(l => l.Weights), needs.Sum(l => l.Cache), needs.Max(l => l.Activations), shares[s]));
        }

        var over = stageMemory.FirstOrDefault(m => m.Total > m.Budget);
        if (over is not null)
        {
            throw new InvalidInputException($"the model needs {MaxMemory.GiB(needed)} and the devices offer {MaxMemory.GiB(offered)}, but its layers cannot be cut to fit: stage {over.Stage} on {over.Device} needs {MaxMemory.GiB(over.Total)} of its {MaxMemory.GiB(over.Budget)}");
        }

        return new MemoryPlan(new PipelinePlan(stages), stageMemory);
    }

    // Linear partition with capacities: best[k, i] = the least possible fullest ratio (need / share) when layers [0, i)
    // form stages 0..k-1.
    private static List<int> LeastFull(IReadOnlyList<LayerMemory> needs, IReadOnlyList<long> shares)
    {
        var n = needs.Count;
        var stageCount = shares.Count;
        var prefix = new long[n + 1];
        var largest = new long[n + 1, n + 1];
        for (var i = 0; i < n; i++)
        {
            prefix[i + 1] = prefix[i] + needs[i].Weights + needs[i].Cache;
            for (var j = i + 1; j <= n; j++)
            {
                largest[i, j] = Math.Max(largest[i, j - 1], needs[j - 1].Activations);
            }
        }

        double Ratio(int stage, int from, int to) => (prefix[to] - prefix[from] + largest[from, to]) / (double)Math.Max(1, shares[stage]);
        var best = new double[stageCount + 1, n + 1];
        var cut = new int[stageCount + 1, n + 1];
        for (var i = 1; i <= n; i++)
        {
            best[1, i] = Ratio(0, 0, i);
        }

        for (var k = 2; k <= stageCount; k++)
        {
            for (var i = k; i <= n; i++)
            {
                best[k, i] = double.MaxValue;
                for (var j = k - 1; j < i; j++)
                {
                    var fullest = Math.Max(best[k - 1, j], Ratio(k - 1, j, i));
                    if (fullest < best[k, i])
                    {
                        best[k, i] = fullest;
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
