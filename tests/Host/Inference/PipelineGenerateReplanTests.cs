using Akka.Actor;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Host.Inference;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.Inference;

/// <summary>
/// Pipelined generation whose micro-batches ran on plans of different sizes (a cluster pipeline that lost a stage node is
/// planned again with fewer stages): the results are written whole, and the summary describes the plan that ran last.
/// </summary>
public sealed class PipelineGenerateReplanTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-replan-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static Tensor Expected(string name) =>
        SafeTensorsFile.Open(Path.Combine(DiRunner.Fixtures, "llama3-tiny", "expected.safetensors")).Read(name);

    [Fact]
    public async Task Micro_batches_measured_on_plans_of_different_sizes_keep_their_results_and_the_summary_names_the_last_plan()
    {
        var prompts = Path.Combine(_folder, "prompts.safetensors");
        SafeTensorsFile.Write(prompts, new Dictionary<string, Tensor>
        {
            ["input_ids"] = Expected("greedy_input_ids"),
            ["attention_mask"] = Expected("greedy_attention_mask"),
        });
        var output = Path.Combine(_folder, "out.safetensors");
        var options = new InferOptions(
            Path.Combine(DiRunner.Fixtures, "llama3-tiny", "model"), InferenceTask.Generate, prompts, null, null, output, Mode.Pipeline, "cpu,cpu,cpu",
            ApplyPadding: false, DType: Precision.Fp32, MaxBatchSize: 1, MaxNewTokens: 10, Seed: 0, LibTorch: null, NumChunks: 1);
        var job = PreparedJob.From(options);
        var three = job.Source.LoadStaged(job.Task);
        using var ownedThree = three as IDisposable;
        var two = job.Source.LoadStaged(job.Task);
        using var ownedTwo = two as IDisposable;
        await using var before = await PipelineRuntime.StartAsync(three, Partitioner.Plan(three.Layers, [DeviceName.Cpu, DeviceName.Cpu, DeviceName.Cpu], "auto"), job.DType);
        await using var after = await PipelineRuntime.StartAsync(two, Partitioner.Plan(two.Layers, [DeviceName.Cpu, DeviceName.Cpu], "auto"), job.DType);
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        // Two micro-batches of one row each, one after the other: the first runs on three stages, the second on the two of
        // the plan made after a loss.
        await PipelineGenerate.Run(new Replanned(before, after), job, options, stdout, stderr, CancellationToken.None);

        Assert.Equal(Expected("greedy_output").data<long>().ToArray(), SafeTensorsFile.Open(output).Read("output_ids").data<long>().ToArray());
        Assert.Contains("pipeline on 2 device(s): 2 row(s)", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("di: stage utilisation not measured on the last plan (2 stage(s))", stderr.ToString(), StringComparison.Ordinal);
    }

    // A pipeline that was planned again between micro-batches: the first micro-batch's steps on `before`, every later one's on `after`.
    private sealed class Replanned(IPipeline before, IPipeline after) : IPipeline
    {
        private readonly object _gate = new();
        private string? _firstMicroBatch;
        private bool _replanned;

        public IReadOnlyList<IActorRef> Stages => Current.Stages;

        public IReadOnlyList<string> StageDescriptions => Current.StageDescriptions;

        private IPipeline Current
        {
            get
            {
                lock (_gate)
                {
                    return _replanned ? after : before;
                }
            }
        }

        public Task<PipelineCompleted> RunAsync(object input, int? numChunks = null, bool gatherOutput = false, CancellationToken cancellation = default) =>
            throw new NotSupportedException();

        public Task<PipelineStepCompleted> StepAsync(object payload, CancellationToken cancellation = default)
        {
            Assert.True(GenerationStep.TryRead(payload, out var step));
            lock (_gate)
            {
                _firstMicroBatch ??= step.Sequence;
                _replanned |= step.Sequence != _firstMicroBatch;
                return (step.Sequence == _firstMicroBatch ? before : after).StepAsync(payload, cancellation);
            }
        }

        public Task<PipelineMetrics> MetricsAsync(CancellationToken cancellation = default) => Current.MetricsAsync(cancellation);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
