using System.Diagnostics;
using System.Globalization;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// <c>di infer --mode pipeline --task generate</c>: the rows in calls of at most --max-batch-size rows, each cut into
/// --num-chunks micro-batches (default: one per stage) generated side by side through stages that keep their own
/// key/value caches (<see cref="PipelineGeneration"/>); the output equals replica mode's. Tokens/s, time per output
/// token and the stages' utilisation and bubble fraction while decoding are reported on stderr.
/// </summary>
public static class PipelineGenerate
{
    public static async Task Run(IPipeline pipeline, PreparedJob job, InferOptions options, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var stages = pipeline.Stages.Count;
        var info = options.Informational(stderr);
        await PipelineInference.WriteStages(pipeline, info);
        if (job.Generation.MaxNewTokens == 0)
        {
            // Nothing to generate: the output is the prompts, as replica mode gives them.
            job.Complete(options, job.Inputs.InputIds, "pipeline", stages, null, stdout, stderr);
            return;
        }

        var total = (int)job.Inputs.Count;
        var ids = job.Inputs.InputIds;
        var mask = job.Inputs.AttentionMask;
        using var seeds = job.Seeds();
        var calls = Enumerable.Range(0, (total + options.MaxBatchSize - 1) / options.MaxBatchSize)
            .Select(c => (Start: c * options.MaxBatchSize, Count: Math.Min(options.MaxBatchSize, total - (c * options.MaxBatchSize))))
            .ToList();
        var clock = Stopwatch.StartNew();
        var results = await ProgressBar.Track(stderr, $"generate through {stages} stage(s)", async progress =>
        {
            var done = 0;
            progress?.Report(new JobProgress(0, total));
            return await Task.WhenAll(calls.Select(async call =>
            {
                var result = await PipelineGeneration.GenerateAsync(
                    pipeline,
                    ids.narrow(0, call.Start, call.Count),
                    mask?.narrow(0, call.Start, call.Count),
                    seeds.narrow(0, call.Start, call.Count),
                    job.Generation,
                    job.Source.EosTokenIds,
                    job.Source.PadTokenId,
                    options.NumChunks ?? stages,
                    cancellation: cancellation);
                progress?.Report(new JobProgress(Interlocked.Add(ref done, call.Count), total));
                return result;
            }));
        });

        var elapsed = clock.Elapsed;
        var metrics = results.Select(r => r.Metrics).ToList();
        var measured = metrics.Where(m => m.DecodeUtilisation.Count > 0).ToList();
        List<double> utilisation = measured.Count == 0 ? [] : Enumerable.Range(0, measured[0].DecodeUtilisation.Count).Select(s => measured.Average(m => m.DecodeUtilisation[s])).ToList();
        var bubble = utilisation.Count == 0 ? (double?)null : 1 - utilisation.Average();
        var tokens = metrics.Sum(m => m.NewTokens);
        await info.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"di: generated {tokens} token(s) in {elapsed.TotalMilliseconds:F0} ms: {tokens / Math.Max(elapsed.TotalSeconds, 1e-9):F1} tokens/s, time per output token {metrics.Average(m => m.TimePerOutputToken.TotalMilliseconds):F1} ms, {metrics.Sum(m => m.MicroBatches)} micro-batch(es){(metrics.Sum(m => m.Resumes) is > 0 and var resumes ? $", {resumes} resumed after a lost stage" : string.Empty)}"));
        await info.WriteLineAsync(bubble is null
            ? "di: decode too short to measure stage utilisation"
            : string.Create(CultureInfo.InvariantCulture, $"di: decode bubble fraction {bubble:F3}, stage utilisation {string.Join(" ", utilisation.Select(u => u.ToString("P0", CultureInfo.InvariantCulture)))}"));
        using var output = cat(results.Select(r => r.OutputIds).ToArray(), 0);
        foreach (var result in results)
        {
            result.OutputIds.Dispose();
        }

        job.Complete(options, output, "pipeline", stages, bubble, stdout, stderr);
    }
}
