namespace DistributedInference.Models.Serving.Batching;

/// <summary>Where a <see cref="BatchSequence"/> is in its life under an <see cref="IterationScheduler"/>.</summary>
public enum SequenceState
{
    /// <summary>Queued for admission (new, or preempted and waiting to be recomputed).</summary>
    Waiting,

    /// <summary>In the running set: one chunk of prefill or one decode step per iteration.</summary>
    Running,

    /// <summary>Ended (stopped, its budget spent, or cancelled); its blocks are released.</summary>
    Finished,
}

/// <summary>
/// One sequence as the scheduler sees it (vLLM's <c>Request</c>): its tokens (prompt, then what was generated), how
/// many of them have their keys and values in the cache (<see cref="ComputedTokens"/>), and its block table.
/// The engine appends tokens through <see cref="IterationScheduler.Completed"/>; nothing here touches a tensor.
/// </summary>
public sealed class BatchSequence
{
    private readonly List<long> _tokens;

    /// <param name="id">Unique among the scheduler's sequences.</param>
    /// <param name="promptTokenIds">At least one id.</param>
    /// <param name="maxNewTokens">Tokens it may generate at most (blocks are reserved as it grows, not up front).</param>
    /// <exception cref="ArgumentException">An empty prompt or a budget below 1.</exception>
    public BatchSequence(string id, IReadOnlyList<long> promptTokenIds, int maxNewTokens)
    {
        if (promptTokenIds.Count == 0)
        {
            throw new ArgumentException("a sequence needs at least one prompt token", nameof(promptTokenIds));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(maxNewTokens, 1);
        Id = id;
        PromptLength = promptTokenIds.Count;
        MaxNewTokens = maxNewTokens;
        _tokens = [.. promptTokenIds];
    }

    public string Id { get; }

    /// <summary>Prompt tokens at the start of <see cref="Tokens"/>.</summary>
    public int PromptLength { get; }

    /// <summary>Tokens it may generate at most.</summary>
    public int MaxNewTokens { get; }

    /// <summary>The prompt, then every generated token.</summary>
    public IReadOnlyList<long> Tokens => _tokens;

    /// <summary>Tokens generated so far.</summary>
    public int OutputLength => _tokens.Count - PromptLength;

    /// <summary>Tokens whose keys and values are in the cache (0 after a preemption: they are recomputed).</summary>
    public int ComputedTokens { get; internal set; }

    /// <summary>Prompt tokens found in the prefix cache when it was last admitted.</summary>
    public int CachedPromptTokens { get; internal set; }

    /// <summary>The block table: block i holds positions [i x block size, (i + 1) x block size).</summary>
    public List<int> Blocks { get; } = [];

    /// <summary>Hashes of the full blocks registered so far (a chain: block i's hash covers tokens up to its end).</summary>
    internal List<BlockHash> BlockHashes { get; } = [];

    public SequenceState State { get; internal set; } = SequenceState.Waiting;

    /// <summary>Times it was preempted and recomputed.</summary>
    public int Preemptions { get; internal set; }

    /// <summary>Order of arrival (FCFS), set when added.</summary>
    public long Arrival { get; internal set; }

    /// <summary>The engine's own state for this sequence (its sampler, its stream), untouched by the scheduler.</summary>
    public object? Tag { get; set; }

    internal void Append(long token) => _tokens.Add(token);
}
