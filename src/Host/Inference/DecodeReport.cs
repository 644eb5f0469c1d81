using System.Globalization;
using DistributedInference.Actors.Pipeline;

namespace DistributedInference.Host.Inference;

/// <summary>
/// What pipelined generation reports on stderr besides its results: tokens, tokens/s, time per output token,
/// micro-batches, and each stage's busy share of the decode window with the bubble fraction. It describes the plan
/// that ran last: a cluster pipeline that lost a stage is planned again (maybe with fewer stages), so micro-batches may
/// have been measured on plans of different sizes; stage utilisation measured over more or fewer stages than the last
/// plan has is "not measured on the last plan". Built from any metrics without throwing: a report never costs a job
/// its results.
/// </summary>
/// <param name="Stages">Stages of the plan that ran last.</param>
/// <param name="Utilisation">Per stage of that plan, its busy share of the decode window; empty when not measured.</param>
/// <param name="OtherPlan">Utilisation was measured, but on a plan of another size than the last.</param>
public sealed record DecodeReport(int Stages, long Tokens, TimeSpan Elapsed, double TimePerOutputTokenMs, int MicroBatches, int Resumes, IReadOnlyList<double> Utilisation, bool OtherPlan)
{
    /// <summary>1 - mean stage utilisation; null when utilisation was not measured.</summary>
    public double? BubbleFraction => Utilisation.Count == 0 ? null : 1 - Utilisation.Average();

    /// <param name="metrics">The generation's metrics (its stage timings may span plans of different sizes after a re-plan).</param>
    /// <param name="stages">Stages of the plan that ran last (<see cref="IPipeline.Stages"/> once the generation is over).</param>
    /// <param name="elapsed">Wall time of the whole generation.</param>
    public static DecodeReport Of(PipelineGenerationMetrics metrics, int stages, TimeSpan elapsed)
    {
        var measured = metrics.DecodeUtilisation.Count > 0;
        var lastPlan = measured && metrics.DecodeUtilisation.Count == stages;
        return new DecodeReport(
            stages,
            metrics.NewTokens,
            elapsed,
            metrics.TimePerOutputToken.TotalMilliseconds,
            metrics.MicroBatches,
            metrics.Resumes,
            lastPlan ? metrics.DecodeUtilisation : [],
            OtherPlan: measured && !lastPlan);
    }

    /// <summary>The lines for stderr, each starting with <c>di: </c>.</summary>
    public IEnumerable<string> Lines()
    {
        yield return string.Create(CultureInfo.InvariantCulture,
            $"di: generated {Tokens} token(s) in {Elapsed.TotalMilliseconds:F0} ms: {Tokens / Math.Max(Elapsed.TotalSeconds, 1e-9):F1} tokens/s, time per output token {TimePerOutputTokenMs:F1} ms, {MicroBatches} micro-batch(es){(Resumes > 0 ? $", {Resumes} resumed after a lost stage" : string.Empty)}");
        yield return BubbleFraction is not { } bubble
            ? OtherPlan || Resumes > 0 ? $"di: stage utilisation not measured on the last plan ({Stages} stage(s))" : "di: decode too short to measure stage utilisation"
            : string.Create(CultureInfo.InvariantCulture, $"di: decode bubble fraction {bubble:F3}, stage utilisation {string.Join(" ", Utilisation.Select(u => u.ToString("P0", CultureInfo.InvariantCulture)))}");
    }
}
