using System.CommandLine;
using DistributedInference.Host.Inference;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// The options of <c>di infer</c>, shared by <c>di infer</c> itself and by <c>di launch ... -- infer ...</c>.
/// </summary>
public sealed class InferArguments
{
    private readonly Option<string> _model = new Option<string>("--model")
    {
        Description = $"a Hugging Face model folder, its family read from config.json's model_type ({string.Join(", ", Models.Auto.AutoModelSource.ModelTypes)}), or a built-in with random weights from --seed: {string.Join(", ", Models.Auto.AutoModelSource.BuiltIns)}",
        DefaultValueFactory = _ => "gpt2",
    };

    private readonly Option<InferenceTask> _task = SharedOptions.Task(
        "what to compute: llama, mistral, qwen2, qwen3 run logits and generate; gpt2 logits, generate, and classify with a score head; bert (sentence-transformers) embed; stable-diffusion (diffusers folders) text-to-image",
        InferenceTask.Generate);

    private readonly Option<string?> _inputIds = new Option<string?>("--input-ids") { Description = "safetensors file with input_ids int64 [B,T] (optional attention_mask [B,T], and seed int64 [B]: each row's sampling seed)" };
    private readonly Option<string[]> _prompts = SharedOptions.Prompts("prompts, tokenized with the model's own tokenizer (a folder's tokenizer.json, BERT's vocab; GPT-2's BPE for gpt2); a prompt that starts with - goes in --prompts-file");
    private readonly Option<string?> _promptsFile = new Option<string?>("--prompts-file") { Description = "text file, one prompt a line, tokenized as --prompts are" };
    private readonly Option<string?> _output = new Option<string?>("--output") { Description = "F.safetensors or F.jsonl; JSON lines on stdout when left out" };
    private readonly Option<Mode> _mode = SharedOptions.Choice("--mode", "replica: every device holds the whole model and gets a share of the rows; pipeline: the model is cut into one stage per device", Mode.Replica, Modes.Parse, Enum.GetValues<Mode>().Select(Modes.Name));
    private readonly Option<string> _splitPoints = new Option<string>("--split-points") { Description = "pipeline: auto (balanced by parameter bytes), compute (balanced by estimated FLOPs per token), or the layers that start stages 2, 3, ...: h.1,h.3", DefaultValueFactory = _ => "auto" };
    private readonly Option<int?> _numChunks = new Option<int?>("--num-chunks") { Description = "pipeline: micro-batches per call (default: one per stage)" };
    private readonly Option<string?> _maxMemory = new Option<string?>("--max-memory") { Description = "pipeline: memory budgets per device, as Accelerate's max_memory: cpu=6GiB,cuda:0=20GiB (stages on one device share it); auto balances the stages within them" };
    private readonly Option<bool> _gatherOutput = new Option<bool>("--gather-output") { Description = "pipeline: hand the output to every stage, not only the last" };
    private readonly Option<string> _devices = new Option<string>("--devices") { Description = "comma-separated devices, one device actor each: cpu,cpu | cuda:0,cuda:1", DefaultValueFactory = _ => "cpu" };
    private readonly Option<bool> _applyPadding = new Option<bool>("--apply-padding") { Description = "pad every device's share to the same size with the last row (as accelerate); results still come back without the padding" };
    private readonly Option<Precision> _dtype = SharedOptions.DType("precision the model runs in", Precision.Fp32);
    private readonly Option<int> _maxBatchSize = new Option<int>("--max-batch-size") { Description = "replica: rows per forward pass on a device; pipeline: rows per call", DefaultValueFactory = _ => 8 };
    private readonly Option<int> _maxNewTokens = new Option<int>("--max-new-tokens") { Description = "tokens to generate per input (task generate)", DefaultValueFactory = _ => 20 };
    private readonly Option<long> _seed = SharedOptions.Seed("seed of a built-in model's random weights and of sampling (--do-sample)");
    private readonly Option<string[]> _join = SharedOptions.Join("a node of a running cluster (repeat for several): run the job on the cluster's devices, joining it as a client");
    private readonly Option<double?> _joinTimeout = SharedOptions.JoinTimeout();
    private readonly Option<string?> _secretFile = SharedOptions.SecretFile();
    private readonly Option<string?> _tlsCertificate = SharedOptions.TlsCertificate();
    private readonly Option<bool> _strict = new Option<bool>("--strict") { Description = "fail (exit 1, nothing written) when an output holds NaN or Inf, instead of a warning" };
    private readonly GenerationArguments _generation = new();
    private readonly TextToImageArguments _image = new();
    private readonly Option<bool> _allowPartial = new("--allow-partial") { Description = "replica: when some rows fail alone, still write a .safetensors output: the other rows, the failed ones as zeros, and a row_ok tensor (uint8 [rows], 0 for a failed row)" };
    private readonly Option<bool> _quiet = new("--quiet") { Description = "leave out the informational lines on stderr (the summary a job ends with, the pipeline plan, stages, rates); warnings stay" };
    private readonly Option<string?> _jsonSummary = new("--json-summary") { Description = "also write the job's summary (rows, wall time, rows/s, tokens/s, ...) to this JSON file" };
    private readonly Option<string?> _libtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch (a PyTorch install's torch/lib, CUDA included); also ${Models.Runtime.LibTorch.FolderVariable}" };

    /// <summary>A command named <c>infer</c> with every option (its action is the caller's).</summary>
    public Command CreateCommand()
    {
        var command = new Command("infer", "Run a model over inputs; results come back in input order.")
        {
            _model, _task, _inputIds, _prompts, _promptsFile, _output, _mode, _splitPoints, _numChunks, _maxMemory, _gatherOutput, _devices, _applyPadding, _dtype, _maxBatchSize, _maxNewTokens, _seed, _join, _joinTimeout, _secretFile, _tlsCertificate, _strict, _allowPartial, _quiet, _jsonSummary, _libtorch,
        };
        foreach (var option in _generation.Options.Concat(_image.Options))
        {
            command.Options.Add(option);
        }

        return command;
    }

    /// <summary>The warning for sampling options given without --do-sample (see <see cref="GenerationArguments.IgnoredSamplingWarning"/>).</summary>
    public string? Warning(ParseResult result) => _generation.IgnoredSamplingWarning(result);

    public InferOptions Read(ParseResult result) => new(
        Model: result.GetValue(_model)!,
        Task: result.GetValue(_task),
        InputIdsPath: result.GetValue(_inputIds),
        Prompts: result.GetValue(_prompts),
        PromptsFile: result.GetValue(_promptsFile),
        OutputPath: result.GetValue(_output),
        Mode: result.GetValue(_mode),
        Devices: result.GetValue(_devices)!,
        ApplyPadding: result.GetValue(_applyPadding),
        DType: result.GetValue(_dtype),
        MaxBatchSize: result.GetValue(_maxBatchSize),
        MaxNewTokens: result.GetValue(_maxNewTokens),
        Seed: result.GetValue(_seed),
        LibTorch: result.GetValue(_libtorch),
        SplitPoints: result.GetValue(_splitPoints)!,
        NumChunks: result.GetValue(_numChunks),
        GatherOutput: result.GetValue(_gatherOutput),
        ClusterSeeds: result.GetValue(_join) ?? [],
        Strict: result.GetValue(_strict),
        Quiet: result.GetValue(_quiet),
        JsonSummaryPath: result.GetValue(_jsonSummary),
        Generation: _generation.Read(result, result.GetValue(_maxNewTokens), result.GetValue(_seed)),
        JoinTimeout: SharedOptions.Seconds(result.GetValue(_joinTimeout)),
        SecretFile: result.GetValue(_secretFile),
        TlsCertificate: result.GetValue(_tlsCertificate),
        MaxMemory: result.GetValue(_maxMemory),
        AllowPartial: result.GetValue(_allowPartial),
        Image: _image.Read(result));
}
