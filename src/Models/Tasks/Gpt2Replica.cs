using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// GPT-2 as a replica. Input rows are either token ids (a dictionary with <c>input_ids</c> [B, T] and optionally
/// <c>attention_mask</c> [B, T], or the ids tensor alone), whose results are the task's tensor, one row per input
/// row; or prompts (a list of strings, tokenized here with GPT-2's tokenizer), whose results are one object per
/// prompt: a <see cref="Tasks.Completion"/> (generate, as every decoder answers), logits [T_i, vocab] of the prompt's own tokens (logits), or
/// logits [labels] (classify).
/// </summary>
public sealed class Gpt2Replica : IReplicaModel
{
    public const string InputIds = "input_ids";
    public const string AttentionMask = "attention_mask";

    private readonly Gpt2TaskModel _model;

    private Gpt2Replica(Gpt2TaskModel model, ReplicaSpec spec, DeviceName device)
    {
        _model = model;
        Spec = spec;
        Description = spec.On(device);
    }

    public string Description { get; }

    public ReplicaSpec Spec { get; }

    public static ReplicaModelFactory Factory(Gpt2Source source, InferenceTask task, ScalarType dtype, int maxNewTokens) =>
        Factory(source, task, dtype, new Generation.GenerationOptions(maxNewTokens));

    /// <summary>Builds GPT-2 replicas that generate as <paramref name="generation"/> says (greedy or sampled).</summary>
    public static ReplicaModelFactory Factory(Gpt2Source source, InferenceTask task, ScalarType dtype, Generation.GenerationOptions generation) =>
        device =>
        {
            var model = Gpt2TaskModel.Load(source, task, device.ToTorch(), dtype, generation);
            return new Gpt2Replica(model, new ReplicaSpec(ModelIdentity.Of(source.Name, source.IsRandom ? source.Seed : null), task, Precisions.Of(dtype), generation), device);
        };

    /// <summary>The rows a job over token ids splits: ids and, when rows are padded, the mask.</summary>
    public static IReadOnlyDictionary<string, object> Rows(Tensor inputIds, Tensor? attentionMask)
    {
        var rows = new Dictionary<string, object> { [InputIds] = inputIds };
        if (attentionMask is not null)
        {
            rows[AttentionMask] = attentionMask;
        }

        return rows;
    }

    public object Run(object rows) => rows switch
    {
        Tensor ids => _model.Run(ids, null),
        IReadOnlyDictionary<string, object> named when named.TryGetValue(InputIds, out var ids) && ids is Tensor idsTensor =>
            _model.Run(idsTensor, named.TryGetValue(AttentionMask, out var mask) ? mask as Tensor : null, named.TryGetValue(TokenRows.Seed, out var seeds) ? seeds as Tensor : null),
        System.Collections.IList prompts when prompts.Cast<object?>().All(p => p is string) => RunPrompts(prompts.Cast<string>().ToList()),
        _ => throw new InvalidInputException($"GPT-2 takes prompts (strings), a dictionary with {InputIds} (and optionally {AttentionMask}), or an ids tensor"),
    };

    private object[] RunPrompts(IReadOnlyList<string> prompts)
    {
        if (_model.Config.VocabSize < Tokenization.Gpt2Tokenizer.VocabularySize)
        {
            throw new InvalidInputException(
                $"prompts use GPT-2's tokenizer ({Tokenization.Gpt2Tokenizer.VocabularySize} tokens) but this model's vocabulary has {_model.Config.VocabSize}: give token ids instead");
        }

        var tokens = prompts.Select(p => Tokenization.Gpt2Tokenizer.Instance.Encode(p)).ToList();
        var batch = Tokenization.TokenBatch.Pad(tokens, _model.PadTokenId, padLeft: _model.Task == InferenceTask.Generate);
        using var ids = batch.InputIds;
        using var mask = batch.AttentionMask;
        using var results = _model.Run(ids, mask);
        var width = ids.shape[1];
        return prompts.Select((prompt, row) => _model.Task switch
        {
            InferenceTask.Generate => (object)Completion(prompt, _model.Continuation(results[row], width)),
            InferenceTask.Logits => results[row].narrow(0, 0, tokens[row].Count).clone(),
            _ => results[row].clone(),
        }).ToArray();
    }

    public void Dispose() => _model.Dispose();

    private static Completion Completion(string prompt, IReadOnlyList<long> outputIds) =>
        new(prompt, outputIds, Tokenization.Gpt2Tokenizer.Instance.Decode(outputIds));
}
