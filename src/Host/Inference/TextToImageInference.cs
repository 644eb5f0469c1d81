using Akka.Actor;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Spectre.Console;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// <c>di infer --task text-to-image</c> in replica mode: each device holds the whole pipeline, the prompts are split as
/// for text (accelerate's rules, <c>--apply-padding</c> included) and the images come back in input order. On this
/// machine's devices, with a progress bar of denoising steps on a terminal; or on a cluster's (<c>--join</c>,
/// <c>di launch</c>), whose nodes serve the pipeline with <c>--task text-to-image</c> (each row carries its own options,
/// so the nodes need no others).
/// </summary>
public static class TextToImageInference
{
    // One batch of Stable Diffusion on a CPU runs for minutes (sd-1.5, 50 steps: about 10 minutes on 2 cores).
    private static readonly TimeSpan BatchTimeout = TimeSpan.FromHours(6);

    /// <summary>Runs the job on this machine's devices.</summary>
    public static async Task Run(TextToImageJob job, InferOptions options, TextWriter stderr, CancellationToken cancellation)
    {
        var steps = new StepCounter();
        var factory = TextToImageReplica.Factory(job.Source.Source, job.DType, onStep: steps.Add);
        await using var runtime = await ReplicaRuntime.StartAsync(job.Devices, FaultInjection.Apply(factory), cancellation: cancellation);
        var rows = job.Rows();
        var result = await Track(stderr, job, steps, () => runtime.Client.RunAsync(rows, JobOptionsOf(options), null, cancellation));
        Complete(job, options, result, "replica", job.Devices.Count, stderr);
    }

    /// <summary>Runs the job from a client node on the devices of its cluster (<paramref name="nodes"/>: device nodes to wait for; null: those Up now).</summary>
    public static async Task RunOnCluster(ActorSystem client, TextToImageJob job, InferOptions options, int? nodes, TextWriter stderr, CancellationToken cancellation)
    {
        var spec = new ReplicaSpec(ModelIdentity.Of(job.Source.Name, job.Source.RandomSeed), InferenceTask.TextToImage, Precisions.Of(job.DType));
        await using var route = await ClusterReplicaRoute.OpenAsync(client, spec, nodes, cancellation);
        if (route.Devices.Count > 0)
        {
            await stderr.WriteLineAsync($"di: {route.Describe()}");
        }

        var rows = job.Rows();
        var result = await ProgressBar.Track(
            stderr,
            $"text-to-image on {route.Devices.Count} device(s)",
            progress => route.CreateClient(line => stderr.WriteLine($"di: {line}")).RunAsync(rows, JobOptionsOf(options) with { Model = spec.Model }, progress, cancellation));
        Complete(job, options, result, "replica (cluster)", route.Devices.Count, stderr);
    }

    private static JobOptions JobOptionsOf(InferOptions options) => new(options.ApplyPadding, options.MaxBatchSize) { BatchTimeout = BatchTimeout };

    private static void Complete(TextToImageJob job, InferOptions options, JobResult result, string mode, int devices, TextWriter stderr)
    {
        if (result.FailedRows.Count > 0)
        {
            throw new JobFailedException($"{FailedRows.Describe(result.FailedRows)}; no image written");
        }

        using var images = (Tensor)result.Results!;
        job.Complete(options, images, mode, devices, stderr);
    }

    // Denoising steps done over all devices (each step of a batch of n rows counts n), shown as a bar on a terminal.
    private static async Task<T> Track<T>(TextWriter stderr, TextToImageJob job, StepCounter steps, Func<Task<T>> work)
    {
        if (!ReferenceEquals(stderr, Console.Error) || Console.IsErrorRedirected)
        {
            return await work();
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return await console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var total = (double)job.Prompts.Count * job.Options.NumInferenceSteps;
                var bar = context.AddTask($"text-to-image: {job.Describe()}", maxValue: total);
                var running = work();
                while (await Task.WhenAny(running, Task.Delay(250)) != running)
                {
                    bar.Value = Math.Min(total, steps.Value);
                }

                bar.Value = total;
                return await running;
            });
    }

    private sealed class StepCounter
    {
        private long _value;

        public long Value => Interlocked.Read(ref _value);

        public void Add(int rows) => Interlocked.Add(ref _value, rows);
    }
}
