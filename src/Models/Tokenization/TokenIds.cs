using static TorchSharp.torch;

namespace DistributedInference.Models.Tokenization;

/// <summary>The one check of token-id rows before any device work (an out-of-range id on CUDA would poison the context).</summary>
public static class TokenIds
{
    /// <param name="inputIds">[B, T] int64 or int32 ids.</param>
    /// <param name="vocabSize">Rows of the embedding: ids must be in [0, vocabSize).</param>
    /// <param name="maxPositions">The most positions the model has.</param>
    /// <param name="positionsKey">The config key that sets <paramref name="maxPositions"/>, for the error.</param>
    /// <param name="extraPositions">Positions generation will add after the ids.</param>
    /// <exception cref="InvalidInputException">Wrong rank or dtype, an id outside the vocabulary, too many positions.</exception>
    public static void Check(Tensor inputIds, int vocabSize, int maxPositions, string positionsKey, long extraPositions = 0)
    {
        if (inputIds.dim() != 2)
        {
            throw new InvalidInputException($"input_ids must be [batch, sequence], got [{string.Join(", ", inputIds.shape)}]");
        }

        if (inputIds.dtype is not (ScalarType.Int64 or ScalarType.Int32))
        {
            throw new InvalidInputException($"input_ids must be int64 token ids, got {inputIds.dtype}");
        }

        var length = inputIds.shape[1] + extraPositions;
        if (length > maxPositions)
        {
            var generated = extraPositions > 0 ? $" ({inputIds.shape[1]} given + {extraPositions} to generate)" : string.Empty;
            throw new InvalidInputException($"sequence of {length} positions{generated} is longer than the model's {positionsKey} {maxPositions}");
        }

        if (inputIds.NumberOfElements == 0)
        {
            return;
        }

        // Called outside any dispose scope (before a model opens its own): the two scalars are freed here.
        using var maxTensor = inputIds.max();
        using var minTensor = inputIds.min();
        var (max, min) = (maxTensor.ToInt64(), minTensor.ToInt64());
        if (max >= vocabSize || min < 0)
        {
            throw new InvalidInputException($"token id {(max >= vocabSize ? max : min)} is outside the model's vocabulary [0, {vocabSize})");
        }
    }
}
