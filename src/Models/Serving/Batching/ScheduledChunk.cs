namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// One sequence's share of an iteration: compute keys and values for tokens [<see cref="Start"/>, <see cref="Start"/> +
/// <see cref="Count"/>) of <see cref="BatchSequence.Tokens"/> into its blocks (1 token: a decode step; more: a chunk of
/// prefill). When the chunk reaches the last known token, the logits of its last position choose the next token
/// (<see cref="SamplesToken"/>); a prefill chunk short of the end chooses nothing.
/// </summary>
public sealed record ScheduledChunk(BatchSequence Sequence, int Start, int Count)
{
    /// <summary>Whether this chunk ends at the sequence's last known token, so its logits pick the next one.</summary>
    public bool SamplesToken => Start + Count == Sequence.Tokens.Count;

    /// <summary>The token ids and positions of chunks of equal length, row after row (rows x length each, int64).</summary>
    public static (long[] Ids, long[] Positions) Inputs(IReadOnlyList<ScheduledChunk> chunks)
    {
        var length = chunks[0].Count;
        var ids = new long[chunks.Count * length];
        var positions = new long[chunks.Count * length];
        for (var r = 0; r < chunks.Count; r++)
        {
            var chunk = chunks[r];
            for (var t = 0; t < length; t++)
            {
                ids[(r * length) + t] = chunk.Sequence.Tokens[chunk.Start + t];
                positions[(r * length) + t] = chunk.Start + t;
            }
        }

        return (ids, positions);
    }
}

/// <summary>What one iteration runs: chunks in scheduling order (running sequences first, then new admissions).</summary>
/// <param name="Chunks">At most the step's token budget in all; empty when nothing is runnable.</param>
/// <param name="Preempted">Sequences sent back to the waiting queue this iteration, their blocks released (recompute).</param>
public sealed record SchedulerStep(IReadOnlyList<ScheduledChunk> Chunks, IReadOnlyList<BatchSequence> Preempted)
{
    /// <summary>Tokens computed by this step.</summary>
    public int Tokens => Chunks.Sum(c => c.Count);
}
