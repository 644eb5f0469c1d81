using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>A <c>di infer</c> job checked end to end before any model is loaded: every error surfaces here first.</summary>
public sealed record PreparedJob(
    InferenceTask Task,
    Precision Precision,
    IReadOnlyList<DeviceName> Devices,
    ResultWriter Writer,
    IModelSource Source,
    InferenceInputs Inputs,
    GenerationOptions Generation)
{
    /// <summary>The dtype the engines run in (<see cref="Precision"/>'s).</summary>
    public ScalarType DType => Precision.ToScalarType();

    /// <summary>Runs from the moment the job was checked: the summary's wall time includes loading.</summary>
    public System.Diagnostics.Stopwatch Clock { get; } = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>Writes the results in input order, then the summary line (and JSON) the options ask for.</summary>
    /// <param name="result">The job's results in input order; not disposed.</param>
    /// <param name="failedRows">Rows that failed alone (replica mode): written as errors, see <see cref="ResultWriter.Write"/>.</param>
    public void Complete(InferOptions options, Tensor result, string mode, int devices, double? bubbleFraction, TextWriter stdout, TextWriter stderr, IReadOnlyList<RowFailure>? failedRows = null)
    {
        WriteNotices(stderr);
        Writer.Write(Task, Inputs, result, Source, stdout, failedRows, options.AllowPartial);
        if (failedRows is { Count: > 0 })
        {
            stderr.WriteLine($"di: warning: {FailedRows.Describe(failedRows)}");
        }

        JobSummary.Of(this, mode, devices, result, Clock, bubbleFraction).Report(stderr, options.Quiet, options.JsonSummaryPath);
    }

    /// <summary>
    /// The rows the job splits (see <see cref="TokenRows"/>): ids, the mask when rows are padded, and for generate each
    /// row's sampling seed (<see cref="Seeds"/>).
    /// </summary>
    public IReadOnlyDictionary<string, object> Rows() =>
        TokenRows.Of(Inputs.InputIds, Inputs.AttentionMask, Task == InferenceTask.Generate ? Seeds() : null);

    /// <summary>
    /// Each row's sampling seed, [rows] int64: the input file's <c>seed</c> tensor when it has one, else --seed mixed with
    /// the row's real tokens (<see cref="RowSeeds"/>), so a row samples the same alone, in any job, on any devices.
    /// </summary>
    public Tensor Seeds() => Inputs.Seeds ?? tensor(RowSeeds.Derive(Generation.Seed, Inputs.InputIds, Inputs.AttentionMask));

    /// <summary>Says on stderr, once, with the results, what a user could not otherwise tell: that a built-in's weights are random.</summary>
    private void WriteNotices(TextWriter stderr)
    {
        if (Source.RandomSeed is { } seed)
        {
            stderr.WriteLine($"di: {Source.Name} is a built-in configuration with random weights (seed {seed}); give --model DIR for a trained checkpoint");
        }
    }

    public static PreparedJob From(InferOptions options)
    {
        LibTorch.Initialize(options.LibTorch);
        var task = options.Task;
        var devices = DeviceName.ParseList(options.Devices);
        if (options.MaxBatchSize <= 0)
        {
            throw new InvalidInputException($"--max-batch-size must be positive, got {options.MaxBatchSize}");
        }

        if (options.MaxNewTokens < 0)
        {
            throw new InvalidInputException($"--max-new-tokens must be >= 0, got {options.MaxNewTokens}");
        }

        var generation = options.GenerationOrGreedy.Validate();

        if (options.NumChunks is <= 0)
        {
            throw new InvalidInputException($"--num-chunks must be positive, got {options.NumChunks}");
        }

        if (options.AllowPartial && options.Mode == Mode.Pipeline)
        {
            throw new InvalidInputException("--allow-partial is for --mode replica, where rows that fail alone are isolated; a pipeline job succeeds or fails whole");
        }

        if (options.MaxMemory is not null)
        {
            if (options.Mode != Mode.Pipeline || options.SplitPoints.Trim().ToLowerInvariant() != Models.Partitioning.Partitioner.Auto)
            {
                throw new InvalidInputException("--max-memory plans pipeline stages: use it with --mode pipeline and --split-points auto");
            }

            if (options.OnCluster)
            {
                throw new InvalidInputException("--max-memory plans a pipeline on this machine's devices; on a cluster each node's reported free memory bounds its stages");
            }

            Models.Partitioning.MaxMemory.Parse(options.MaxMemory);
        }

        OutputPaths.Check(options);
        var writer = ResultWriter.For(options.OutputPath);
        if (options.JsonSummaryPath is not null)
        {
            InputChecks.Writable("--json-summary", options.JsonSummaryPath);
        }

        foreach (var device in devices.Distinct())
        {
            device.ToTorch();
        }

        var source = AutoModelSource.Resolve(options.Model, options.Seed);
        ModelTasks.Require(source, task);
        if (options.Mode == Mode.Pipeline)
        {
            ModelTasks.RequirePipelined(source, task);
        }

        var inputs = InferenceInputs.Read(options, source, task);
        source.CheckInput(inputs.InputIds, task, generation);
        if (task == InferenceTask.Generate && inputs.AttentionMask is null)
        {
            // Ids given without a mask: padding as transformers' generate infers it, the same for replicas and pipelines.
            inputs = inputs with { AttentionMask = GenerationMask.Infer(inputs.InputIds, source.DeclaredPadTokenId, source.EosTokenIds) };
        }

        return new PreparedJob(task, options.DType, devices, writer, source, inputs, generation);
    }
}
