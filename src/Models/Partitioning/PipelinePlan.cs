using System.Globalization;
using System.Text;

namespace DistributedInference.Models.Partitioning;

/// <summary>Which layers each pipeline stage runs, and where.</summary>
public sealed record PipelinePlan(IReadOnlyList<StageAssignment> Stages)
{
    /// <summary>The plan as a table: stage, device, layers, parameter bytes.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        foreach (var stage in Stages)
        {
            var layers = stage.LayerNames.Count == 1 ? stage.LayerNames[0] : $"{stage.LayerNames[0]} .. {stage.LayerNames[^1]}";
            text.AppendLine(CultureInfo.InvariantCulture, $"stage {stage.Stage} on {stage.Device}: {layers} ({stage.LayerCount} {(stage.LayerCount == 1 ? "layer" : "layers")}, {Megabytes(stage.ParameterBytes)}{(stage.FlopsPerToken > 0 ? string.Create(CultureInfo.InvariantCulture, $", {stage.FlopsPerToken / 1e6:F1} MFLOP/token") : string.Empty)})");
        }

        return text.ToString();
    }

    private static string Megabytes(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024.0):F1} MiB");
}
