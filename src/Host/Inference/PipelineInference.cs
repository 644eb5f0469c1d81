using System.Globalization;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// <c>di infer --mode pipeline</c>: GPT-2 cut into one stage per device (at --split-points, or balanced with auto);
/// the rows go through in calls of at most --max-batch-size rows, each cut into --num-chunks micro-batches, all calls
/// streaming through the stages back to back. The plan and the bubble fraction are reported on stderr.
/// </summary>
public static class PipelineInference
{
    public static async Task Run(PreparedJob job, InferOptions options, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var staged = job.Source.LoadStaged(job.Task);
        using var owned = staged as IDisposable;

        // Planned at the sizes the stages will load: the run's dtype.
        var layers = StagedLayerInfo.InDtype(staged.Layers, job.DType);
        PipelinePlan plan;
        if (options.MaxMemory is { } maxMemory)
        {
            // From config.json and the checkpoint's headers only: a model that cannot fit is refused before any weight is read.
            var memory = MemoryOf(staged, job, options);
            var planned = MemoryPlanner.Plan(layers, memory, job.Devices, MaxMemory.Parse(maxMemory));
            plan = planned.Plan;
            await options.Informational(stderr).WriteAsync($"di: pipeline plan (auto within --max-memory {maxMemory}):{Environment.NewLine}{planned.Describe()}");
        }
        else
        {
            plan = Partitioner.Plan(layers, job.Devices, options.SplitPoints);
            await options.Informational(stderr).WriteAsync($"di: pipeline plan ({options.SplitPoints}):{Environment.NewLine}{plan.Describe()}");
        }

        await using var pipeline = await PipelineRuntime.StartAsync(staged, plan, job.DType, cancellation: cancellation);
        await RunCalls(pipeline, job, options, stdout, stderr, cancellation);
    }

    private static IReadOnlyList<LayerMemory> MemoryOf(Models.Staging.IStagedModel staged, PreparedJob job, InferOptions options) =>
        RunMemory.Estimate(
            staged,
            job.DType,
            (int)job.Inputs.Count,
            options.MaxBatchSize,
            MicroBatches.NumChunks(options.NumChunks, job.Devices.Count),
            job.Inputs.InputIds.shape[1],
            job.Task == InferenceTask.Generate ? job.Generation.MaxNewTokens : null);

    /// <summary>Each stage's weights loaded and its process's resident peak, as the stage reported them once built.</summary>
    public static async Task WriteStages(IPipeline pipeline, TextWriter stderr)
    {
        for (var s = 0; s < pipeline.StageDescriptions.Count; s++)
        {
            await stderr.WriteLineAsync($"di: stage {s}: {pipeline.StageDescriptions[s]}");
        }
    }

    /// <summary>The job's rows through a running pipeline (here or across nodes), calls streaming back to back; writes the output.</summary>
    public static async Task RunCalls(IPipeline pipeline, PreparedJob job, InferOptions options, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        if (job.Task == InferenceTask.Generate)
        {
            await PipelineGenerate.Run(pipeline, job, options, stdout, stderr, cancellation);
            return;
        }

        var stages = pipeline.Stages.Count;
        await WriteStages(pipeline, options.Informational(stderr));
        var rows = job.Rows();
        var total = (int)job.Inputs.Count;
        var calls = Enumerable.Range(0, (total + options.MaxBatchSize - 1) / options.MaxBatchSize)
            .Select(c => (Start: c * options.MaxBatchSize, Count: Math.Min(options.MaxBatchSize, total - (c * options.MaxBatchSize))))
            .ToList();

        // Outputs back in row order as calls finish (each call's rows once).
        using var outputs = new Actors.Kernel.Rows.RowAssembler(total);
        await ProgressBar.Track(stderr, $"{job.Task.Name()} through {stages} stage(s)", async progress =>
        {
            progress?.Report(new JobProgress(0, total));
            await Task.WhenAll(calls.Select(async call =>
            {
                // The call's rows as views (the pipeline is sent handles of its own): released once the call is over.
                var part = Actors.Kernel.Rows.Rows.Slice(rows, call.Start, call.Count);
                PipelineCompleted completed;
                try
                {
                    completed = await pipeline.RunAsync(part, MicroBatches.NumChunks(options.NumChunks, stages), options.GatherOutput, cancellation);
                }
                finally
                {
                    Actors.Kernel.Rows.RowOwnership.DisposeViews(part);
                }

                int done;
                lock (outputs)
                {
                    outputs.Add(call.Start, completed.Output);
                    done = outputs.Done;
                }

                progress?.Report(new JobProgress(done, total));
            }));
            return outputs.Done;
        });

        var metrics = await pipeline.MetricsAsync();
        await options.Informational(stderr).WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"di: {metrics.Calls} call(s), {metrics.Total.Elapsed.TotalMilliseconds:F0} ms, bubble fraction {metrics.Total.BubbleFraction:F3}, stage utilisation {string.Join(" ", metrics.Total.Stages.Select(s => s.Utilisation.ToString("P0", CultureInfo.InvariantCulture)))}"));
        // Results are float32 whatever the stages computed in, as in replica mode.
        using var output = (Tensor)outputs.Join()!;
        using var result = output.is_floating_point() ? output.to(ScalarType.Float32) : output.alias();
        // The plan that ran last (a cluster pipeline that lost a stage was planned again, maybe with fewer stages).
        job.Complete(options, result, "pipeline", pipeline.Stages.Count, metrics.Total.BubbleFraction, stdout, stderr);
    }
}
