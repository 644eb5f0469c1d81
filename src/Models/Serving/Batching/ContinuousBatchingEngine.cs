using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// Continuous batching on one device (vLLM's <c>EngineCore.step</c> loop): a thread of its own owns the model's device
/// and, iteration after iteration, asks the <see cref="IterationScheduler"/> what to run, runs it over the
/// <see cref="PagedKvStore"/> (chunks of equal length share a forward pass: the decode steps, and prompt chunks of one
/// length; rows are split into further passes by the workspace budget), picks each sampled sequence's token with its own sampling parameters
/// (greedy, or a <see cref="RowSampler"/> of the sequence's seed, as <see cref="ServingDecoder"/> does), and streams it.
/// Requests join at the next iteration and leave the moment they stop, run out of budget or are cancelled (at the next
/// iteration). A greedy sequence's logits come from its own tokens only (its past through its own blocks, padding
/// masked), so what runs beside it changes no token of it. The passes run on an <see cref="IModelExecutor"/>: the model
/// on one device (<see cref="LocalModelExecutor"/>: does not own the model; each pass holds the model's monitor, so a
/// model shared with a <see cref="ServingReplica"/> runs one forward at a time), or a pipeline's stages. When the
/// executor loses its cache (<see cref="KvCacheLostException"/>) every running sequence is preempted and recomputed and
/// the prefix cache forgets every block (<see cref="IterationScheduler.ForgetCache"/>).
/// </summary>
public sealed class ContinuousBatchingEngine : IGenerationEngine, IDisposable
{
    /// <summary>Times in a row the executor may lose its cache (every sequence recomputed) before the engine gives up.</summary>
    public const int MaxCacheLosses = 3;

    private readonly IModelExecutor _executor;
    private readonly ConcurrentQueue<Work> _incoming = new();
    private readonly List<Work> _live = [];
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Thread _loop;
    private readonly CancellationTokenSource _stopping = new();
    private readonly long _workspacePositions;
    private readonly Action<long>? _beforeIteration;
    private int _cacheLosses;

    /// <param name="model">A decoder on <paramref name="device"/>, used by this engine's thread only while it runs.</param>
    /// <param name="device">The model's device.</param>
    /// <param name="options">Cache size and scheduler limits.</param>
    /// <exception cref="InvalidInputException">Impossible options.</exception>
    public ContinuousBatchingEngine(ICausalLanguageModel model, Device device, ContinuousBatchingOptions? options = null)
        : this(new LocalModelExecutor(model, device), options)
    {
    }

    /// <summary>An engine over any executor (a pipeline's stages: see <see cref="IModelExecutor"/>).</summary>
    /// <param name="executor">Runs the passes; the engine owns it from now on (disposes it, also when this throws).</param>
    /// <param name="options">Cache size and scheduler limits.</param>
    /// <exception cref="InvalidInputException">Impossible options, or a cache that cannot be allocated.</exception>
    public ContinuousBatchingEngine(IModelExecutor executor, ContinuousBatchingOptions? options = null)
    {
        _executor = executor;
        try
        {
            options ??= new ContinuousBatchingOptions();
            var bytesPerPosition = executor.BytesPerPosition;
            var blocks = options.Blocks(bytesPerPosition);
            _workspacePositions = Math.Max(1, options.WorkspaceBytes / bytesPerPosition);
            _beforeIteration = options.BeforeIteration;
            Scheduler = new IterationScheduler(new KvBlockPool(blocks, options.BlockSize), options.Scheduler);
            executor.InitializeCache(blocks, options.BlockSize);
        }
        catch
        {
            executor.Dispose();
            throw;
        }

        Publish();
        _loop = new Thread(Loop) { IsBackground = true, Name = $"di-engine-{executor.Name}" };
        _loop.Start();
    }

    /// <summary>The scheduler (read its counts only between iterations: <see cref="Iterations"/> tells them apart).</summary>
    internal IterationScheduler Scheduler { get; }

    /// <summary>Iterations run so far.</summary>
    public long Iterations => Interlocked.Read(ref _iterations);

    /// <summary>The engine's state after its last iteration (see <see cref="EngineLoad"/>).</summary>
    public EngineLoad Load => Volatile.Read(ref _load);

    private long _iterations;
    private long _preemptions;
    private TimeSpan _busy;
    private EngineLoad _load = new(0, 0, 0, 0, 0, 0, 0, TimeSpan.Zero);

    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        request.Sampling.Validate();
        if (request.PromptTokenIds.Count == 0)
        {
            throw new InvalidInputException("the prompt has no tokens");
        }

        _executor.CheckInput(request.PromptTokenIds, request.Sampling.MaxTokens);

        if (_stopping.IsCancellationRequested)
        {
            throw new EngineUnavailableException("the engine has stopped");
        }

        var work = new Work(request);
        _incoming.Enqueue(work);
        _signal.Release();
        if (_stopping.IsCancellationRequested)
        {
            // Disposed meanwhile: the loop may be gone, and nobody would answer.
            work.Cancelled = true;
            throw new EngineUnavailableException("the engine has stopped");
        }

        using var registration = cancellation.Register(() => Abandon(work));
        var ended = false;
        try
        {
            await foreach (var update in work.Updates.Reader.ReadAllAsync(cancellation))
            {
                // Tokens already queued are nobody's once the caller cancelled.
                cancellation.ThrowIfCancellationRequested();
                ended = update.Finished is not null;
                yield return update;
            }

            ended = true;
        }
        finally
        {
            // A caller that stops reading early (a stop string matched above the engine) ends the sequence too.
            if (!ended)
            {
                Abandon(work);
            }
        }
    }

    /// <summary>Stops the loop; requests still running fail with <see cref="EngineUnavailableException"/>.</summary>
    public void Dispose()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        _stopping.Cancel();
        _signal.Release();
        _loop.Join();
        _executor.Dispose();
    }

    // The sequence leaves at the next iteration (its stream ends there); the semaphore is never disposed, so a late
    // cancellation after Dispose is harmless.
    private void Abandon(Work work)
    {
        work.Cancelled = true;
        _signal.Release();
    }

    private void Loop()
    {
        try
        {
            Iterate();
        }
        catch (Exception e)
        {
            // The scheduler's state can no longer be trusted: every request ends, and the engine refuses new ones.
            _stopping.Cancel();
            Drop(_ => true, _ => new EngineUnavailableException($"the engine failed: {e.GetType().Name}: {e.Message}", e));
        }
        finally
        {
            while (_incoming.TryDequeue(out var work))
            {
                work.Updates.Writer.TryComplete(new EngineUnavailableException("the engine has stopped"));
            }
        }
    }

    private void Iterate()
    {
        while (true)
        {
            if (!_stopping.IsCancellationRequested && Scheduler.IsIdle && _incoming.IsEmpty)
            {
                Publish();
                _signal.Wait();
                continue;
            }

            if (!_stopping.IsCancellationRequested)
            {
                _beforeIteration?.Invoke(Iterations);
            }

            Admit();
            Drop(w => w.Cancelled, _ => null);
            if (_stopping.IsCancellationRequested)
            {
                Drop(_ => true, _ => new EngineUnavailableException("the engine stopped while the request ran"));
                return;
            }

            if (Scheduler.IsIdle)
            {
                continue;
            }

            var step = Scheduler.Schedule();
            _preemptions += step.Preempted.Count;
            var started = Stopwatch.GetTimestamp();
            try
            {
                Run(step);
                _cacheLosses = 0;
            }
            catch (KvCacheLostException e)
            {
                // No block holds what the scheduler thinks: every running sequence is recomputed from its tokens, and
                // no later request may match a cached prefix.
                _preemptions += Scheduler.ForgetCache().Count;
                if (++_cacheLosses > MaxCacheLosses)
                {
                    _cacheLosses = 0;
                    Drop(_ => true, _ => new EngineUnavailableException($"the KV cache was lost {MaxCacheLosses + 1} times in a row: {e.Message}", e));
                }
            }
            catch (Exception e)
            {
                var failed = step.Chunks.Select(c => (Work)c.Sequence.Tag!).ToHashSet();
                Drop(failed.Contains, _ => e is InvalidInputException ? e : new EngineUnavailableException($"the device failed the request: {e.Message}", e));
            }

            _busy += Stopwatch.GetElapsedTime(started);
            Interlocked.Increment(ref _iterations);
            Publish();
        }
    }

    private void Publish()
    {
        var pool = Scheduler.Pool;
        var (queried, hit) = Scheduler.PrefixCacheTokens;
        Volatile.Write(ref _load, new EngineLoad(pool.UsedBlocks, pool.TotalBlocks, Scheduler.Running.Count, Scheduler.Waiting, queried, hit, _preemptions, _busy));
    }

    private void Admit()
    {
        while (_incoming.TryDequeue(out var work))
        {
            var sequence = new BatchSequence(work.Request.RequestId, work.Request.PromptTokenIds, work.Request.Sampling.MaxTokens) { Tag = work };
            try
            {
                if (!Scheduler.TryAdd(sequence))
                {
                    work.Updates.Writer.TryComplete(new EngineOverloadedException($"{Scheduler.Waiting} requests are waiting already; try again later"));
                    continue;
                }
            }
            catch (InvalidInputException e)
            {
                work.Updates.Writer.TryComplete(e);
                continue;
            }

            work.Start(sequence);
            _live.Add(work);
        }
    }

    // Ends the live requests that match: their sequences leave the scheduler, their streams end (with the error, if any).
    private void Drop(Func<Work, bool> which, Func<Work, Exception?> error)
    {
        for (var i = _live.Count - 1; i >= 0; i--)
        {
            var work = _live[i];
            if (which(work))
            {
                try
                {
                    Scheduler.Finish(work.Sequence!);
                }
                catch (InvalidOperationException) when (_stopping.IsCancellationRequested)
                {
                    // The engine is failing anyway: the request must still end.
                }

                work.Updates.Writer.TryComplete(error(work));
                work.Dispose();
                _live.RemoveAt(i);
            }
        }
    }

    private void Run(SchedulerStep step)
    {
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        var groups = new List<IReadOnlyList<ScheduledChunk>>();
        foreach (var sameLength in step.Chunks.GroupBy(c => c.Count))
        {
            List<ScheduledChunk>? current = null;
            foreach (var chunk in sameLength.OrderBy(c => c.Start))
            {
                // Sorted by past length, so this row's past is the group's longest: the view is rows x (past + chunk) positions.
                if (current is null || (current.Count + 1L) * (chunk.Start + chunk.Count) > _workspacePositions)
                {
                    groups.Add(current = []);
                }

                current.Add(chunk);
            }
        }

        foreach (var group in groups)
        {
            var logits = _executor.ExecuteModel(group);
            long[]? greedy = null;
            for (var r = 0; r < group.Count; r++)
            {
                var chunk = group[r];
                if (!chunk.SamplesToken)
                {
                    Scheduler.Completed(chunk, null);
                    continue;
                }

                var work = (Work)chunk.Sequence.Tag!;
                var sampling = work.Request.Sampling;
                long token;
                if (sampling.IsGreedy && sampling.RepetitionPenalty == 1.0)
                {
                    greedy ??= logits.argmax(-1).cpu().data<long>().ToArray();
                    token = greedy[r];
                }
                else
                {
                    token = ServingDecoder.Choose(logits[r], sampling, work.Seen, work.Sampler);
                }

                Scheduler.Completed(chunk, token);
                Emit(work, sampling.Logprobs is { } k ? ServingDecoder.WithLogprobs(logits[r], token, k) : new GeneratedToken(token));
            }
        }
    }

    private void Emit(Work work, GeneratedToken token)
    {
        var sequence = work.Sequence!;
        work.Seen.Add(token.TokenId);
        FinishReason? finish = work.Request.StopTokenIds.Contains(token.TokenId) ? FinishReason.Stop
            : sequence.OutputLength >= sequence.MaxNewTokens ? FinishReason.Length
            : null;
        work.Updates.Writer.TryWrite(new GenerationUpdate([token], finish));
        if (finish is not null)
        {
            Scheduler.Finish(sequence);
            work.Updates.Writer.TryComplete();
            work.Dispose();
            _live.Remove(work);
        }
    }

    private sealed class Work(GenerationRequest request) : IDisposable
    {
        public GenerationRequest Request { get; } = request;

        public Channel<GenerationUpdate> Updates { get; } = Channel.CreateUnbounded<GenerationUpdate>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        public volatile bool Cancelled;

        public BatchSequence? Sequence { get; private set; }

        public HashSet<long> Seen { get; } = [.. request.PromptTokenIds];

        public RowSampler? Sampler { get; private set; }

        public void Start(BatchSequence sequence)
        {
            Sequence = sequence;
            var row = new DecoderRow(Request.PromptTokenIds, Request.Sampling, Request.StopTokenIds, Request.SequenceIndex);
            Sampler = Request.Sampling.IsGreedy ? null : new RowSampler([ServingDecoder.SequenceSeed(row)]);
        }

        public void Dispose() => Sampler?.Dispose();
    }
}

/// <summary>What a <see cref="ContinuousBatchingEngine"/> holds: KV blocks used and in all, sequences running and waiting;
/// since it started, prompt tokens looked up in the prefix cache and found there, sequences preempted, and the time spent
/// running iterations (the device's busy time).</summary>
public sealed record EngineLoad(int UsedBlocks, int TotalBlocks, int Running, int Waiting, long PrefixQueriedTokens, long PrefixHitTokens, long Preemptions, TimeSpan Busy);
