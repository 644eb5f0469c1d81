using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// A Llama-family decoder (llama, mistral, qwen2, qwen3) as a replica. Input rows are <see cref="TokenRows"/> (or an ids
/// tensor), whose results are, per input row, float32 logits [T, vocab] (task logits; padded positions hold what the
/// model computes there) or int64 ids [T + max_new_tokens] (task generate: the prompt, moved to left padding, then the
/// new tokens, the pad id after an end-of-sequence id), on the CPU and owned by the caller; or prompts (a list of
/// strings, tokenized with the model's tokenizer), whose results are one object per prompt: a <see cref="Completion"/>
/// (generate) or the logits [T_i, vocab] of the prompt's own tokens (logits).
/// </summary>
public sealed class DecoderReplica : IReplicaModel
{
    private readonly LlamaForCausalLM _model;
    private readonly InferenceTask _task;
    private readonly GenerationOptions _generation;
    private readonly Device _device;
    private readonly Tokenization.ITextTokenizer? _tokenizer;

    private DecoderReplica(LlamaForCausalLM model, InferenceTask task, GenerationOptions generation, Device device, Tokenization.ITextTokenizer? tokenizer, ReplicaSpec spec, DeviceName deviceName)
    {
        _tokenizer = tokenizer;
        _model = model;
        _task = task;
        _generation = generation;
        _device = device;
        Spec = spec;
        Description = spec.On(deviceName);
    }

    public string Description { get; }

    public ReplicaSpec Spec { get; }

    /// <summary>Builds the model from <paramref name="source"/> on each device it is called for.</summary>
    /// <param name="tokenizer">Tokenizes prompts given as strings; null: the replica takes token ids only.</param>
    /// <exception cref="InvalidInputException">A task other than logits or generate, or impossible generation options.</exception>
    public static ReplicaModelFactory Factory(LlamaSource source, InferenceTask task, ScalarType dtype, GenerationOptions generation, Tokenization.ITextTokenizer? tokenizer = null)
    {
        if (task is not (InferenceTask.Logits or InferenceTask.Generate))
        {
            throw new InvalidInputException($"{source.Config.ModelType} runs tasks logits and generate, not {task.Name()}");
        }

        generation.Validate();
        return device =>
        {
            var torchDevice = device.ToTorch();
            var model = source.CreateModel(torchDevice, dtype);
            var spec = new ReplicaSpec(ModelIdentity.Of(source.Name, source.IsBuiltIn ? source.Seed : null), task, Precisions.Of(dtype), generation);
            return new DecoderReplica(model, task, generation, torchDevice, tokenizer, spec, device);
        };
    }

    public object Run(object rows)
    {
        if (rows is System.Collections.IList list && list.Cast<object?>().All(p => p is string))
        {
            return RunPrompts(list.Cast<string>().ToList());
        }

        var (inputIds, attentionMask, seeds) = TokenRows.Read(rows, _model.Config.ModelType);
        return Run(inputIds, attentionMask, seeds);
    }

    public void Dispose() => _model.Dispose();

    private Tensor Run(Tensor inputIds, Tensor? attentionMask, Tensor? seeds)
    {
        using var scope = NewDisposeScope();
        var ids = inputIds.to(ScalarType.Int64).to(_device);
        var mask = attentionMask?.to(ScalarType.Int64).to(_device);
        if (_task == InferenceTask.Logits)
        {
            return _model.Logits(ids, mask).to(ScalarType.Float32).cpu().MoveToOuterDisposeScope();
        }

        var tokens = _model.Generate(ids, mask, _generation, seeds?.to(ScalarType.Int64).data<long>().ToArray());
        var missing = ids.shape[1] + _generation.MaxNewTokens - tokens.shape[1];
        if (missing > 0)
        {
            tokens = nn.functional.pad(tokens, [0, missing], value: _model.PadTokenId);
        }

        return tokens.cpu().MoveToOuterDisposeScope();
    }

    private object[] RunPrompts(IReadOnlyList<string> prompts)
    {
        var tokenizer = _tokenizer ?? throw new InvalidInputException($"{Description} has no tokenizer: give token ids");
        var tokens = prompts.Select(p => tokenizer.Encode(p)).ToList();
        var batch = Tokenization.TokenBatch.Pad(tokens, _model.PadTokenId, padLeft: _task == InferenceTask.Generate);
        using var ids = batch.InputIds;
        using var mask = batch.AttentionMask;
        using var results = Run(ids, mask, null);
        var width = ids.shape[1];
        return prompts.Select((prompt, row) =>
        {
            if (_task == InferenceTask.Logits)
            {
                return (object)results[row].narrow(0, 0, tokens[row].Count).clone();
            }

            var kept = Continuation.Of(results[row], width, _model.EndOfSequenceIds);
            return new Completion(prompt, kept, tokenizer.Decode(kept.Where(id => id < tokenizer.VocabularySize)));
        }).ToArray();
    }
}
