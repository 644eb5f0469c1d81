using System.Diagnostics;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// <c>di infer --mode pipeline --task generate</c>: at most --max-batch-size rows in flight, cut into --num-chunks
/// micro-batches (default: one per stage) generated side by side through stages that keep their own key/value caches
/// (<see cref="PipelineGeneration"/>), a finished micro-batch making room for the next; the output equals replica mode's. Tokens/s, time per output
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
        var clock = Stopwatch.StartNew();

        // One generation over every row, at most --max-batch-size rows in flight (their caches on the stages), cut into
        // --num-chunks micro-batches side by side; a micro-batch that finishes makes room for the next.
        var result = await ProgressBar.Track(stderr, $"generate through {stages} stage(s)", async progress =>
        {
            var done = 0;
            progress?.Report(new JobProgress(0, total));
            return await PipelineGeneration.GenerateAsync(
                pipeline,
                ids,
                mask,
                seeds,
                job.Generation,
                job.Source.EosTokenIds,
                job.Source.PadTokenId,
                MicroBatches.NumChunks(options.NumChunks, stages),
                cancellation: cancellation,
                maxBatchSize: options.MaxBatchSize,
                rowsDone: new Progress<int>(rows => progress?.Report(new JobProgress(Interlocked.Add(ref done, rows), total))));
        });

        // The plan that ran last: a cluster pipeline that lost a stage was planned again, maybe with fewer stages.
        var report = DecodeReport.Of(result.Metrics, pipeline.Stages.Count, clock.Elapsed);
        foreach (var line in report.Lines())
        {
            await info.WriteLineAsync(line);
        }

        using var output = result.OutputIds;
        job.Complete(options, output, "pipeline", report.Stages, report.BubbleFraction, stdout, stderr);
    }
}
