using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>The part of a generated row a user reads: what came after the prompt.</summary>
public static class Continuation
{
    /// <summary>The ids after a prompt of <paramref name="promptWidth"/> positions, up to and including the first end-of-sequence id.</summary>
    /// <param name="outputRow">[T + n] int64 on the CPU: a row of <see cref="GenerationLoop.Generate"/>'s result.</param>
    public static long[] Of(Tensor outputRow, long promptWidth, IReadOnlyList<long> endOfSequenceIds)
    {
        var tokens = outputRow.data<long>().Skip((int)promptWidth).ToList();
        var end = tokens.FindIndex(endOfSequenceIds.Contains);
        return (end >= 0 ? tokens.Take(end + 1) : tokens).ToArray();
    }
}
