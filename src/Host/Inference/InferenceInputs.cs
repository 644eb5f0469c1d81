using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// A job's input rows: token ids [N, T] with the attention mask when rows are padded, the prompts they came from when
/// the job was given text, and each row's own sampling seed ([N] int64) when the input file gives them.
/// </summary>
public sealed record InferenceInputs(Tensor InputIds, Tensor? AttentionMask, IReadOnlyList<string>? Prompts, Tensor? Seeds = null)
{
    public long Count => InputIds.shape[0];

    /// <summary>Reads exactly one of --input-ids, --prompts, --prompts-file; prompts are tokenized as the model's family does for the task.</summary>
    public static InferenceInputs Read(InferOptions options, IModelSource model, InferenceTask task)
    {
        var given = new[] { options.InputIdsPath is not null, options.Prompts is { Count: > 0 }, options.PromptsFile is not null }.Count(g => g);
        if (given != 1)
        {
            throw new InvalidInputException("give exactly one of --input-ids, --prompts, --prompts-file");
        }

        if (options.InputIdsPath is { } path)
        {
            return FromSafeTensors(path);
        }

        var prompts = options.Prompts is { Count: > 0 } inline ? inline : InputChecks.PromptLines(options.PromptsFile!);
        var batch = model.Tokenize(prompts, task);
        return new InferenceInputs(batch.InputIds, batch.AttentionMask, prompts);
    }

    private static InferenceInputs FromSafeTensors(string path)
    {
        var file = SafeTensorsFile.Open(path);
        if (!file.Contains("input_ids"))
        {
            throw new InvalidInputException($"{path}: no tensor named input_ids (found: {string.Join(", ", file.Names)})");
        }

        var ids = file.Read("input_ids");
        if (ids.dim() != 2 || ids.dtype is not (ScalarType.Int64 or ScalarType.Int32))
        {
            throw new InvalidInputException($"{path}: input_ids must be int64 [batch, sequence], got {ids.dtype} [{string.Join(", ", ids.shape)}]");
        }

        if (ids.shape[0] == 0 || ids.shape[1] == 0)
        {
            throw new InvalidInputException($"{path}: input_ids is empty [{string.Join(", ", ids.shape)}]");
        }

        Tensor? mask = null;
        if (file.Contains("attention_mask"))
        {
            mask = file.Read("attention_mask");
            if (!mask.shape.SequenceEqual(ids.shape))
            {
                throw new InvalidInputException($"{path}: attention_mask [{string.Join(", ", mask.shape)}] does not match input_ids [{string.Join(", ", ids.shape)}]");
            }

            InputChecks.AttentionMask(path, mask);
            mask = mask.to(ScalarType.Int64);
        }

        Tensor? seeds = null;
        if (file.Contains("seed"))
        {
            seeds = file.Read("seed");
            if (seeds.dim() != 1 || seeds.shape[0] != ids.shape[0] || seeds.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            {
                throw new InvalidInputException($"{path}: seed must be int64 [{ids.shape[0]}] (one seed per row), got {seeds.dtype} [{string.Join(", ", seeds.shape)}]");
            }

            seeds = seeds.to(ScalarType.Int64);
        }

        return new InferenceInputs(ids.to(ScalarType.Int64), mask, null, seeds);
    }
}
