using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>What building one stage cost this process: its weights' bytes, and the rise of the resident peak.</summary>
/// <param name="Stage">The stage's index.</param>
/// <param name="WeightBytes">Bytes of the stage's parameters as built (its dtype).</param>
/// <param name="ResidentBefore">VmRSS just before the stage was built (the peak was reset to it).</param>
/// <param name="PeakResident">VmHWM once it was built.</param>
public sealed record StageLoad(int Stage, long WeightBytes, long ResidentBefore, long PeakResident)
{
    /// <summary>The peak's rise over the baseline while the stage was built.</summary>
    public long PeakRise => PeakResident - ResidentBefore;

    /// <summary><see cref="PeakRise"/> / <see cref="WeightBytes"/>: 1 when loading needs nothing but the weights.</summary>
    public double Ratio => WeightBytes == 0 ? 0 : PeakRise / (double)WeightBytes;
}

/// <summary>
/// Builds the stages of a plan one after another in this process, measuring each (Linux: the resident peak is reset
/// before each stage): how much memory a stage host needs beyond the weights it holds.
/// </summary>
public static class StageLoadMeasurement
{
    /// <returns>The measurements, and the stages built (on the CPU; the caller disposes them).</returns>
    /// <exception cref="PlatformNotSupportedException">Not on Linux, or the peak cannot be reset.</exception>
    public static (IReadOnlyList<StageLoad> Loads, IReadOnlyList<ModelStage> Stages) LoadEach(IStagedModel staged, PipelinePlan plan, ScalarType dtype)
    {
        var loads = new List<StageLoad>();
        var stages = new List<ModelStage>();
        foreach (var assignment in plan.Stages)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            if (!ProcessMemory.ResetPeak())
            {
                throw new PlatformNotSupportedException("the resident peak cannot be reset (/proc/self/clear_refs)");
            }

            var before = ProcessMemory.ResidentBytes();
            var stage = staged.CreateStage(assignment.FirstLayer, assignment.LayerCount, CPU, dtype);
            var peak = ProcessMemory.PeakResidentBytes();
            stages.Add(stage);
            loads.Add(new StageLoad(assignment.Stage, stage.parameters().Sum(p => p.NumberOfElements * p.ElementSize), before, peak));
        }

        return (loads, stages);
    }
}
