using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// Each row's sampling seed, as vLLM keys sampling by a request's own seed (<c>SamplingParams.seed</c>): a row draws
/// from a generator seeded by its seed alone, so what it samples never depends on the rows beside it, its place in the
/// job, the batch it lands in or the device or node that runs it. A row that brings no seed of its own gets
/// <see cref="Seeds.Mix"/>(the job's seed, a hash of its real token ids): the same prompt with the same seed samples the
/// same tokens, alone or among others (to draw different samples of one prompt, give each copy its own seed).
/// </summary>
public static class RowSeeds
{
    /// <summary>The seed of a row without one of its own: the job's seed mixed with a hash of its real token ids.</summary>
    /// <param name="seed">The job's seed (<see cref="GenerationOptions.Seed"/>).</param>
    /// <param name="inputIds">[B, T] int64 (or int32) token ids, any device.</param>
    /// <param name="attentionMask">[B, T], 1 = token, 0 = padding (either side); null when nothing is padded.</param>
    /// <returns>B seeds, one per row; padding never changes a row's seed.</returns>
    public static long[] Derive(long seed, Tensor inputIds, Tensor? attentionMask)
    {
        using var scope = NewDisposeScope();
        var ids = inputIds.to(ScalarType.Int64).cpu();
        var mask = attentionMask?.to(ScalarType.Int64).cpu();
        var rows = (int)ids.shape[0];
        var seeds = new long[rows];
        for (var row = 0; row < rows; row++)
        {
            var tokens = ids[row].data<long>().ToArray();
            var real = mask is null ? tokens : tokens.Where((_, t) => mask[row, t].ToInt64() != 0).ToArray();
            seeds[row] = unchecked((long)Seeds.Mix((ulong)seed, Seeds.Hash(real)));
        }

        return seeds;
    }
}
