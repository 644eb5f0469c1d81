namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// Iteration-level scheduling over a paged key/value cache (Orca, OSDI '22; vLLM v1's <c>Scheduler.schedule</c>):
/// each call to <see cref="Schedule"/> plans one model iteration. Running sequences come first, in the order they were
/// admitted: each gets one decode token, or its next chunk of prefill; when a sequence needs a block and none is free,
/// the most recently admitted running sequence is preempted (its blocks released, its tokens kept, recomputed later
/// from the waiting queue's head). Then, if nothing was preempted, waiting sequences are admitted first come, first
/// served while the running set, the step's token budget and the blocks allow: the head of the queue waits rather than
/// be overtaken. A new sequence starts after the longest prefix of full blocks already in the prefix cache (at least its
/// last token is computed, for its logits). A sequence leaves the moment the engine calls <see cref="Finish"/>.
/// Plain bookkeeping, no tensors, no clock, not thread-safe: one engine loop drives it.
/// </summary>
public sealed class IterationScheduler
{
    private readonly List<BatchSequence> _running = [];
    private readonly LinkedList<BatchSequence> _waiting = new();
    private long _arrivals;

    /// <param name="pool">The device's blocks; this scheduler is their only user.</param>
    /// <param name="options">Limits; validated here.</param>
    /// <exception cref="InvalidInputException">Impossible limits.</exception>
    public IterationScheduler(KvBlockPool pool, IterationSchedulerOptions? options = null)
    {
        Pool = pool;
        Options = (options ?? new IterationSchedulerOptions()).Validate();
    }

    public KvBlockPool Pool { get; }

    public IterationSchedulerOptions Options { get; }

    /// <summary>Sequences in the running set, in admission order.</summary>
    public IReadOnlyList<BatchSequence> Running => _running;

    /// <summary>Sequences queued for admission.</summary>
    public int Waiting => _waiting.Count;

    /// <summary>Whether nothing is running or waiting.</summary>
    public bool IsIdle => _running.Count == 0 && _waiting.Count == 0;

    /// <summary>Prompt tokens looked up in the prefix cache at admission, and those found (a hit rate's two terms).</summary>
    public (long Queried, long Hit) PrefixCacheTokens { get; private set; }

    /// <summary>Queues <paramref name="sequence"/> for admission.</summary>
    /// <returns>False when the waiting queue is full (the caller answers 429).</returns>
    /// <exception cref="InvalidInputException">The sequence could never fit: its prompt and budget need more blocks than the pool has.</exception>
    public bool TryAdd(BatchSequence sequence)
    {
        var needed = Pool.BlocksFor(sequence.PromptLength + sequence.MaxNewTokens);
        if (needed > Pool.TotalBlocks)
        {
            throw new InvalidInputException($"the prompt ({sequence.PromptLength} tokens) and max_tokens ({sequence.MaxNewTokens}) need {needed} KV cache blocks of {Pool.BlockSize} positions; this device's cache holds {Pool.TotalBlocks}");
        }

        if (_waiting.Count >= Options.MaxWaiting)
        {
            return false;
        }

        sequence.Arrival = _arrivals++;
        sequence.State = SequenceState.Waiting;
        _waiting.AddLast(sequence);
        return true;
    }

    /// <summary>Plans the next iteration; an empty plan when nothing can run.</summary>
    public SchedulerStep Schedule()
    {
        var budget = Options.MaxTokensPerStep;
        var chunks = new List<ScheduledChunk>();
        var preempted = new List<BatchSequence>();
        for (var i = 0; i < _running.Count && budget > 0; i++)
        {
            var sequence = _running[i];
            var count = Math.Min(Math.Min(sequence.Tokens.Count - sequence.ComputedTokens, Options.PrefillChunk), budget);
            if (count == 0)
            {
                continue;
            }

            var scheduled = true;
            while (!Reserve(sequence, sequence.ComputedTokens + count))
            {
                var victim = _running[^1];
                Preempt(victim);
                preempted.Add(victim);
                if (victim == sequence)
                {
                    scheduled = false;
                    break;
                }
            }

            if (!scheduled)
            {
                break;
            }

            chunks.Add(new ScheduledChunk(sequence, sequence.ComputedTokens, count));
            budget -= count;
        }

        while (preempted.Count == 0 && budget > 0 && _running.Count < Options.MaxSequences && _waiting.First is { } next)
        {
            var sequence = next.Value;
            if (!Admit(sequence, budget, out var chunk))
            {
                break;
            }

            _waiting.RemoveFirst();
            sequence.State = SequenceState.Running;
            _running.Add(sequence);
            chunks.Add(chunk);
            budget -= chunk.Count;
        }

        return new SchedulerStep(chunks, preempted);
    }

    /// <summary>
    /// Records that <paramref name="chunk"/> was computed, and the token its logits chose when it
    /// <see cref="ScheduledChunk.SamplesToken"/>s; full blocks of computed tokens join the prefix cache.
    /// </summary>
    /// <exception cref="InvalidOperationException">The chunk is not the sequence's next one, or a token is given for a chunk that chooses none.</exception>
    public void Completed(ScheduledChunk chunk, long? token)
    {
        var sequence = chunk.Sequence;
        if (sequence.State != SequenceState.Running || chunk.Start != sequence.ComputedTokens)
        {
            throw new InvalidOperationException($"chunk [{chunk.Start}, {chunk.Start + chunk.Count}) of {sequence.Id} is not its next one ({sequence.ComputedTokens} computed, {sequence.State})");
        }

        if (token is not null && !chunk.SamplesToken)
        {
            throw new InvalidOperationException($"chunk [{chunk.Start}, {chunk.Start + chunk.Count}) of {sequence.Id} ends before its last token and chooses none");
        }

        sequence.ComputedTokens += chunk.Count;
        if (token is { } chosen)
        {
            sequence.Append(chosen);
        }

        if (Options.PrefixCaching)
        {
            var full = sequence.ComputedTokens / Pool.BlockSize;
            if (full > sequence.BlockHashes.Count)
            {
                var hashes = BlockHash.Chain(sequence.Tokens, Pool.BlockSize, full, sequence.BlockHashes);
                for (var b = sequence.BlockHashes.Count; b < full; b++)
                {
                    Pool.Cache(sequence.Blocks[b], hashes[b]);
                    sequence.BlockHashes.Add(hashes[b]);
                }
            }
        }
    }

    /// <summary>Ends <paramref name="sequence"/> wherever it is (running or waiting) and releases its blocks; a second call does nothing.</summary>
    public void Finish(BatchSequence sequence)
    {
        if (sequence.State == SequenceState.Finished)
        {
            return;
        }

        if (sequence.State == SequenceState.Running)
        {
            _running.Remove(sequence);
        }
        else
        {
            _waiting.Remove(sequence);
        }

        ReleaseBlocks(sequence);
        sequence.State = SequenceState.Finished;
    }

    /// <summary>
    /// The blocks' contents are gone (the executor lost its cache): every running sequence is preempted (its blocks
    /// released, its tokens kept: it is recomputed, before the sequences that waited already, in admission order) and the
    /// prefix cache forgets every block, so no sequence reads a block it did not compute since.
    /// </summary>
    /// <returns>The sequences preempted.</returns>
    public IReadOnlyList<BatchSequence> ForgetCache()
    {
        var preempted = _running.ToList();
        for (var i = preempted.Count - 1; i >= 0; i--)
        {
            Preempt(preempted[i]);
        }

        Pool.ForgetCache();
        return preempted;
    }

    private bool Reserve(BatchSequence sequence, int positions)
    {
        var missing = Pool.BlocksFor(positions) - sequence.Blocks.Count;
        return missing <= 0 || Pool.TryAllocate(missing, sequence.Blocks);
    }

    private void Preempt(BatchSequence sequence)
    {
        _running.Remove(sequence);
        ReleaseBlocks(sequence);
        sequence.State = SequenceState.Waiting;
        sequence.Preemptions++;
        _waiting.AddFirst(sequence);
    }

    private void ReleaseBlocks(BatchSequence sequence)
    {
        Pool.Release(sequence.Blocks);
        sequence.Blocks.Clear();
        sequence.BlockHashes.Clear();
        sequence.ComputedTokens = 0;
    }

    // Shares the cached prefix, then reserves the first chunk's blocks; undoes the sharing when they are not there.
    private bool Admit(BatchSequence sequence, int budget, out ScheduledChunk chunk)
    {
        chunk = null!;
        if (Options.PrefixCaching)
        {
            var lookup = (sequence.Tokens.Count - 1) / Pool.BlockSize;
            var hashes = BlockHash.Chain(sequence.Tokens, Pool.BlockSize, lookup);
            var hits = Pool.MatchPrefix(hashes);
            foreach (var block in hits)
            {
                Pool.Share(block);
            }

            sequence.Blocks.AddRange(hits);
            sequence.BlockHashes.AddRange(hashes.Take(hits.Count));
            sequence.ComputedTokens = hits.Count * Pool.BlockSize;
        }

        var count = Math.Min(Math.Min(sequence.Tokens.Count - sequence.ComputedTokens, Options.PrefillChunk), budget);
        if (!Reserve(sequence, sequence.ComputedTokens + count))
        {
            ReleaseBlocks(sequence);
            return false;
        }

        var lookedUp = Math.Min(sequence.PromptLength, sequence.Tokens.Count - 1);
        var cachedPrompt = Math.Min(sequence.ComputedTokens, sequence.PromptLength);
        PrefixCacheTokens = (PrefixCacheTokens.Queried + lookedUp, PrefixCacheTokens.Hit + cachedPrompt);
        sequence.CachedPromptTokens = cachedPrompt;
        chunk = new ScheduledChunk(sequence, sequence.ComputedTokens, count);
        return true;
    }
}
