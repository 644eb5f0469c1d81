using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// GPT-2 as a replica: input rows are a dictionary with <c>input_ids</c> [B, T] and optionally
/// <c>attention_mask</c> [B, T] (or the ids tensor alone); results are the task's tensor, one row per input row.
/// </summary>
public sealed class Gpt2Replica : IReplicaModel
{
    public const string InputIds = "input_ids";
    public const string AttentionMask = "attention_mask";

    private readonly Gpt2TaskModel _model;

    private Gpt2Replica(Gpt2TaskModel model, string description)
    {
        _model = model;
        Description = description;
    }

    public string Description { get; }

    public static ReplicaModelFactory Factory(Gpt2Source source, InferenceTask task, ScalarType dtype, int maxNewTokens) =>
        device =>
        {
            var model = Gpt2TaskModel.Load(source, task, device.ToTorch(), dtype, maxNewTokens);
            return new Gpt2Replica(model, $"{source.Name} ({task.Name()}, {Precision.Name(dtype)}) on {device}");
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
            _model.Run(idsTensor, named.TryGetValue(AttentionMask, out var mask) ? mask as Tensor : null),
        _ => throw new InvalidInputException($"GPT-2 takes a dictionary with {InputIds} (and optionally {AttentionMask}), or an ids tensor"),
    };

    public void Dispose() => _model.Dispose();
}
