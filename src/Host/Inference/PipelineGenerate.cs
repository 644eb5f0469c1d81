using System.Diagnostics;
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
        await PipelineInference.WriteStages(pipeline, stderr);
        if (job.Generation.MaxNewTokens == 0)
        {
            // Nothing to generate: the output is the prompts, as replica mode gives them.
            job.Complete(options, job.Inputs.InputIds, "pipeline", stages, null, stdout, stderr);
            return;
        }

        var total = (int)job.Inputs.Count;
        var ids = job.Inputs.InputIds;
        var mask = job.Inputs.AttentionMask;
        using var rowIndex = arange(total, ScalarType.Int64);
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
                    rowIndex.narrow(0, call.Start, call.Count),
                    job.Generation,
                    job.Source.EosTokenIds,
                    job.Source.PadTokenId,
                    options.NumChunks ?? stages,
                    cancellation: cancellation);
                progress?.Report(new JobProgress(Interlocked.Add(ref done, call.Count), total));
                return result;
            }));
        });

        // The plan that ran last: a cluster pipeline that lost a stage was planned again, maybe with fewer stages.
        var report = DecodeReport.Of(results.Select(r => r.Metrics).ToList(), pipeline.Stages.Count, clock.Elapsed);
        foreach (var line in report.Lines())
        {
            await stderr.WriteLineAsync(line);
        }

        using var output = cat(results.Select(r => r.OutputIds).ToArray(), 0);
        foreach (var result in results)
        {
            result.OutputIds.Dispose();
        }

        job.Complete(options, output, "pipeline", report.Stages, report.BubbleFraction, stdout, stderr);
    }
}
