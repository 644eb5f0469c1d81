using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Models.Tests.Serving.Batching;

/// <summary>
/// A model without tensors for scheduler tests: each cache slot holds a digest of the tokens up to its position, written
/// when the slot's position is computed; computing a chunk first checks that every earlier position of the sequence is
/// in its blocks with the right digest (the keys and values it would attend to), so a wrong block table, a block shared
/// by mistake or overwritten by another sequence fails the test. The next token is a function of the whole prefix, so
/// a sequence's tokens do not depend on what runs beside it, only on the scheduler keeping its cache right.
/// </summary>
internal sealed class SimulatedPagedModel(KvBlockPool pool, int vocabulary = 50_000)
{
    private readonly ulong?[] _slots = new ulong?[pool.TotalBlocks * pool.BlockSize];

    /// <summary>Virtual time, in simulated milliseconds: each iteration costs 1 plus 0.1 per token computed.</summary>
    public double Clock { get; private set; }

    public static ulong Digest(IReadOnlyList<long> tokens, int count)
    {
        var digest = 14695981039346656037UL;
        for (var i = 0; i < count; i++)
        {
            digest = (digest ^ (ulong)tokens[i]) * 1099511628211UL;
        }

        return digest;
    }

    /// <summary>Computes the chunk; returns the next token when the chunk reaches the sequence's end.</summary>
    public long? Compute(ScheduledChunk chunk)
    {
        var sequence = chunk.Sequence;
        for (var p = 0; p < chunk.Start; p++)
        {
            var held = _slots[Slot(sequence, p)];
            if (held != Digest(sequence.Tokens, p + 1))
            {
                throw new InvalidOperationException($"{sequence.Id}: position {p} of its cache does not hold its own prefix");
            }
        }

        for (var p = chunk.Start; p < chunk.Start + chunk.Count; p++)
        {
            _slots[Slot(sequence, p)] = Digest(sequence.Tokens, p + 1);
        }

        return chunk.SamplesToken ? (long)(Digest(sequence.Tokens, sequence.Tokens.Count) % (ulong)vocabulary) : null;
    }

    public void Tick(SchedulerStep step) => Clock += 1 + (0.1 * step.Tokens);

    /// <summary>Every slot's contents are gone (a pipeline stage holding the cache was lost).</summary>
    public void Lose() => Array.Clear(_slots);

    private int Slot(BatchSequence sequence, int position) =>
        (sequence.Blocks[position / pool.BlockSize] * pool.BlockSize) + (position % pool.BlockSize);
}
