using DistributedInference.Models.Gpt2;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// A GPT-2 loaded on one device for one task: takes rows of token ids on the CPU, returns the task's result on the
/// CPU (float32 logits, or int64 token ids [B, T + max_new_tokens] for generation, padded after the end-of-text
/// token), so results can leave the device's thread.
/// </summary>
public sealed class Gpt2TaskModel : IDisposable
{
    private readonly nn.Module _module;
    private readonly Device _device;

    private Gpt2TaskModel(nn.Module module, Gpt2Config config, InferenceTask task, Device device, Generation.GenerationOptions generation)
    {
        _module = module;
        Config = config;
        Task = task;
        _device = device;
        Generation = generation;
    }

    public Gpt2Config Config { get; }

    public InferenceTask Task { get; }

    /// <summary>How task generate picks tokens (greedy unless sampling was asked for).</summary>
    public Generation.GenerationOptions Generation { get; }

    public int MaxNewTokens => Generation.MaxNewTokens;

    /// <summary>The id that pads rows: the config's pad token, else its end-of-text token, else 0.</summary>
    public long PadTokenId => GreedySearch.PadToken(Config);

    public static Gpt2TaskModel Load(Gpt2Source source, InferenceTask task, Device device, ScalarType dtype, int maxNewTokens = 20) =>
        Load(source, task, device, dtype, new Generation.GenerationOptions(maxNewTokens));

    /// <inheritdoc cref="Load(Gpt2Source, InferenceTask, Device, ScalarType, int)"/>
    public static Gpt2TaskModel Load(Gpt2Source source, InferenceTask task, Device device, ScalarType dtype, Generation.GenerationOptions generation)
    {
        generation.Validate();
        if (task == InferenceTask.Embed)
        {
            throw new InvalidInputException("GPT-2 does not run task embed: it runs logits, classify and generate");
        }

        nn.Module module = task == InferenceTask.Classify
            ? source.CreateClassifier(device, dtype)
            : source.CreateLanguageModel(device, dtype);
        return new Gpt2TaskModel(module, source.Config, task, device, generation);
    }

    /// <summary>Checks rows before any device work: ids inside the vocabulary, length inside n_positions.</summary>
    public void CheckInput(Tensor inputIds) =>
        Gpt2Model.CheckInput(Config, inputIds, Task == InferenceTask.Generate ? MaxNewTokens : 0);

    /// <param name="inputIds">[B, T] int64 on the CPU.</param>
    /// <param name="attentionMask">[B, T], 1 = token, 0 = padding (right padding for logits and classify, left for generate), or null.</param>
    /// <param name="seeds">generate: each row's sampling seed ([B] int64); null = derived from the job's seed and each row's tokens.</param>
    public Tensor Run(Tensor inputIds, Tensor? attentionMask, Tensor? seeds = null)
    {
        CheckInput(inputIds);
        using var scope = NewDisposeScope();
        var ids = inputIds.to(ScalarType.Int64).to(_device);
        var mask = attentionMask?.to(ScalarType.Int64).to(_device);
        var result = Task switch
        {
            InferenceTask.Logits => ((Gpt2LMHeadModel)_module).Logits(ids, mask).to(ScalarType.Float32),
            InferenceTask.Classify => ((Gpt2ForSequenceClassification)_module).Classify(ids, mask).to(ScalarType.Float32),
            _ => PadToFullLength(
                Models.Generation.GenerationLoop.Generate((Gpt2LMHeadModel)_module, ids, mask, Generation, seeds?.to(ScalarType.Int64).data<long>().ToArray()), ids.shape[1]),
        };
        return result.cpu().MoveToOuterDisposeScope();
    }

    /// <summary>The tokens generated after a prompt of <paramref name="promptWidth"/> positions, up to and including the end-of-text token.</summary>
    public long[] Continuation(Tensor outputRow, long promptWidth) => GreedySearch.Continuation(Config, outputRow, promptWidth);

    public void Dispose() => _module.Dispose();

    // Generation stops early once every row has ended; results of all batches keep one width, T + max_new_tokens.
    private Tensor PadToFullLength(Tensor tokens, long promptLength)
    {
        var missing = promptLength + MaxNewTokens - tokens.shape[1];
        return missing == 0 ? tokens : nn.functional.pad(tokens, [0, missing], value: PadTokenId);
    }
}
