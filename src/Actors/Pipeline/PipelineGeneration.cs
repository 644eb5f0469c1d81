using System.Diagnostics;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Pipeline;

/// <summary>What a pipelined generation produced and how the stages spent it.</summary>
/// <param name="OutputIds">[B, T + max_new_tokens] int64 on the CPU, as replica mode returns it (prompt moved to left
/// padding, new tokens, pad after a row's end); the caller owns it.</param>
/// <param name="Metrics">Throughput, latency and how busy the stages were while decoding.</param>
public sealed record PipelineGenerationResult(Tensor OutputIds, PipelineGenerationMetrics Metrics);

/// <summary>
/// Metrics of one pipelined generation. The steady-state decode window runs from the moment the last micro-batch's
/// prefill came back (every micro-batch decoding) to the moment the first micro-batch finished; stage utilisation is
/// the share of that window each stage spent computing, and the bubble fraction the share no stage did.
/// </summary>
/// <param name="MicroBatches">Micro-batches (sequence groups) generated side by side.</param>
/// <param name="NewTokens">Tokens generated over all rows (an end-of-sequence id counts, the pads after it do not).</param>
/// <param name="Elapsed">From the first prefill sent to the last token back.</param>
/// <param name="TimePerOutputToken">Mean over micro-batches of (last token back - first token back) / (decode steps).</param>
/// <param name="DecodeWindow">The steady-state decode window (zero when too short to measure).</param>
/// <param name="DecodeUtilisation">Per stage, its busy share of the decode window.</param>
/// <param name="Resumes">Micro-batches resumed on a re-planned pipeline after losing a stage.</param>
public sealed record PipelineGenerationMetrics(
    int MicroBatches,
    long NewTokens,
    TimeSpan Elapsed,
    TimeSpan TimePerOutputToken,
    TimeSpan DecodeWindow,
    IReadOnlyList<double> DecodeUtilisation,
    int Resumes)
{
    /// <summary>New tokens per second of <see cref="Elapsed"/>.</summary>
    public double TokensPerSecond => Elapsed > TimeSpan.Zero ? NewTokens / Elapsed.TotalSeconds : 0;

    /// <summary>1 - mean stage utilisation over the decode window.</summary>
    public double DecodeBubbleFraction => DecodeUtilisation.Count == 0 ? 0 : 1 - DecodeUtilisation.Average();
}

/// <summary>
/// <c>generate</c> through a pipeline whose stages keep the key/value cache of their own layers: the prompts are cut
/// into micro-batches (<see cref="SequenceGroup"/>s) that run side by side, each a loop of steps (prefill, then one
/// token per step) sent through the stages uncut; the next token is picked here, from the last stage's logits, and fed
/// back to the first stage, so while one micro-batch's token is at stage k another's is at stage k-1. With at least
/// as many micro-batches as stages every stage stays busy while decoding. A micro-batch whose stage was lost and
/// re-planned resumes on the new stages (prefill of its prompt and tokens so far); a failure that cannot be resumed
/// fails the call.
/// </summary>
public static class PipelineGeneration
{
    /// <summary>Times one micro-batch may resume after losing a stage before the call fails.</summary>
    public const int MaxResumes = 3;

    /// <param name="pipeline">Stages built from a staged model whose layers can generate.</param>
    /// <param name="inputIds">[B, T] int64 prompts, on the CPU.</param>
    /// <param name="attentionMask">[B, T], 1 = real, 0 = padding; null when nothing is padded.</param>
    /// <param name="rowSeeds">Each row's sampling seed ([B] int64); null = derived from options.Seed and each row's tokens (<see cref="RowSeeds"/>).</param>
    /// <param name="options">Greedy or sampling, max_new_tokens, seed.</param>
    /// <param name="endOfSequenceIds">Ids that end a row.</param>
    /// <param name="padTokenId">The id written after a row's end.</param>
    /// <param name="numChunks">Micro-batches in flight at once (at most one per row).</param>
    /// <param name="onStepLogits">Called with (row indices into the call's rows, [rows, vocab] float32 logits) at each step; the tensor is the loop's.</param>
    /// <param name="cancellation">Stops waiting.</param>
    /// <param name="maxBatchSize">
    /// Rows in flight at once (<c>--max-batch-size</c>): the rows are cut into micro-batches of
    /// ceil(min(B, max_batch_size) / num_chunks) rows, of which <paramref name="numChunks"/> run side by side; when one
    /// finishes the next starts, so the stages' key/value caches hold at most those rows whatever B is. Null: all rows.
    /// </param>
    /// <param name="rowsDone">Told the rows of each micro-batch as it finishes.</param>
    /// <exception cref="Models.InvalidInputException">Impossible options or shapes, or a stage that cannot generate.</exception>
    /// <exception cref="JobFailedException">A stage failed, or stages were lost more often than <see cref="MaxResumes"/>.</exception>
    public static async Task<PipelineGenerationResult> GenerateAsync(
        IPipeline pipeline,
        Tensor inputIds,
        Tensor? attentionMask,
        Tensor? rowSeeds,
        GenerationOptions options,
        IReadOnlyList<long> endOfSequenceIds,
        long padTokenId,
        int numChunks,
        Action<IReadOnlyList<int>, Tensor>? onStepLogits = null,
        CancellationToken cancellation = default,
        int? maxBatchSize = null,
        IProgress<int>? rowsDone = null)
    {
        var rows = (int)inputIds.shape[0];
        if (rows == 0 || numChunks <= 0 || maxBatchSize <= 0)
        {
            throw new Models.InvalidInputException(rows == 0 ? "no rows to generate from" : numChunks <= 0 ? $"num_chunks must be positive, got {numChunks}" : $"max_batch_size must be positive, got {maxBatchSize}");
        }

        var seeds = rowSeeds?.to(ScalarType.Int64).data<long>().ToArray();
        var call = Guid.NewGuid().ToString("N")[..12];
        var inFlight = Math.Min(rows, Math.Min(numChunks, maxBatchSize ?? rows));
        var size = (Math.Min(rows, maxBatchSize ?? rows) + inFlight - 1) / inFlight;
        var microBatches = Enumerable.Range(0, (rows + size - 1) / size).Select(m => (Start: m * size, Count: Math.Min(size, rows - (m * size)))).ToList();
        var record = new Recorder(microBatches.Count, firstWave: inFlight);
        using var outputs = new RowAssembler(rows);
        using var slots = new SemaphoreSlim(inFlight);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var newTokens = 0L;

        // Each micro-batch's sequence group (and its caches on the stages) exists only while it runs.
        async Task Run(int number, int start, int count)
        {
            await slots.WaitAsync(failed.Token);
            try
            {
                using var group = new SequenceGroup(
                    $"{call}-{number}",
                    inputIds.narrow(0, start, count),
                    attentionMask?.narrow(0, start, count),
                    seeds?.Skip(start).Take(count).ToList(),
                    options,
                    endOfSequenceIds,
                    padTokenId);
                await RunGroup(pipeline, group, number, start, record, onStepLogits, failed);
                lock (outputs)
                {
                    outputs.Add(start, group.Output.alias());
                    newTokens += group.NewTokens;
                }

                rowsDone?.Report(count);
            }
            finally
            {
                slots.Release();
            }
        }

        var runs = microBatches.Select((m, number) => Run(number, m.Start, m.Count)).ToList();
        try
        {
            await Task.WhenAll(runs);
        }
        catch when (!cancellation.IsCancellationRequested)
        {
            // The first real failure, not the cancellations it caused in the other micro-batches.
            var first = runs.Where(r => r.IsFaulted).Select(r => r.Exception!.GetBaseException()).FirstOrDefault(e => e is not OperationCanceledException);
            if (first is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
            }

            throw;
        }

        var output = (Tensor)outputs.Join()!;
        return new PipelineGenerationResult(output, record.Metrics(newTokens));
    }

    private static async Task RunGroup(
        IPipeline pipeline, SequenceGroup group, int number, int start, Recorder record, Action<IReadOnlyList<int>, Tensor>? onStepLogits, CancellationTokenSource failed)
    {
        try
        {
            var step = group.Start();
            var resumes = 0;
            while (true)
            {
                PipelineStepCompleted done;
                try
                {
                    done = await pipeline.StepAsync(step.ToPayload(), failed.Token);
                }
                catch (StageStateLostException e)
                {
                    if (++resumes > MaxResumes)
                    {
                        throw new JobFailedException($"micro-batch {number}: stages lost {resumes} times; last: {e.Message}", e);
                    }

                    record.Resumed();
                    step = group.Resume();
                    continue;
                }

                // The output is this caller's: its logits and the handles of the step it carried on.
                using var output = done.Output;
                if (!GenerationStep.TryRead(output.Value, out var result))
                {
                    throw new JobFailedException($"micro-batch {number}: the last stage returned a {output.Value.GetType().Name}, not a generation step (do its layers generate?)");
                }

                record.Step(number, done.Timings, first: group.Steps == 0);
                onStepLogits?.Invoke(group.ActiveRows.Select(r => start + r).ToList(), result.Hidden);
                var next = group.Next(result.Hidden);
                if (next is null)
                {
                    record.Finished(number);
                    break;
                }

                step = next;
            }

            // Frees the caches; a failure here loses nothing the caller needs.
            try
            {
                (await pipeline.StepAsync(group.Release().ToPayload(), failed.Token)).Output.Dispose();
            }
            catch (Exception e) when (e is JobFailedException or StageStateLostException)
            {
            }
        }
        catch
        {
            await failed.CancelAsync();
            throw;
        }
    }

    // Step timings and the moments that bound the steady-state decode window (over the first wave of micro-batches
    // that start together); thread-safe.
    private sealed class Recorder(int groups, int firstWave)
    {
        private readonly object _gate = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly DateTime _start = DateTime.UtcNow;
        private readonly List<StageTiming> _timings = [];
        private readonly DateTime?[] _firstToken = new DateTime?[groups];
        private readonly DateTime?[] _lastToken = new DateTime?[groups];
        private readonly int[] _decodeSteps = new int[groups];
        private readonly DateTime?[] _finished = new DateTime?[groups];
        private int _resumes;

        public void Resumed() => Interlocked.Increment(ref _resumes);

        public void Step(int group, IReadOnlyList<StageTiming> timings, bool first)
        {
            var now = DateTime.UtcNow;
            lock (_gate)
            {
                _timings.AddRange(timings);
                if (first)
                {
                    _firstToken[group] = now;
                }
                else
                {
                    _decodeSteps[group]++;
                }

                _lastToken[group] = now;
            }
        }

        public void Finished(int group)
        {
            lock (_gate)
            {
                _finished[group] = DateTime.UtcNow;
            }
        }

        public PipelineGenerationMetrics Metrics(long newTokens)
        {
            lock (_gate)
            {
                var elapsed = _clock.Elapsed;
                var perToken = Enumerable.Range(0, groups)
                    .Where(g => _decodeSteps[g] > 0)
                    .Select(g => (_lastToken[g]!.Value - _firstToken[g]!.Value) / _decodeSteps[g])
                    .ToList();
                var tpot = perToken.Count == 0 ? TimeSpan.Zero : TimeSpan.FromTicks((long)perToken.Average(t => t.Ticks));
                var wave = Math.Min(firstWave, groups);
                var from = _firstToken.Take(wave).Max() ?? _start;
                var to = _finished.Take(wave).Min() ?? DateTime.UtcNow;
                var stages = _timings.Count == 0 ? 0 : _timings.Max(t => t.Stage) + 1;
                if (to <= from)
                {
                    return new PipelineGenerationMetrics(groups, newTokens, elapsed, tpot, TimeSpan.Zero, [], _resumes);
                }

                var window = to - from;
                var utilisation = Enumerable.Range(0, stages).Select(s => _timings
                    .Where(t => t.Stage == s)
                    .Sum(t => Math.Max(0, (Min(t.Finished, to) - Max(t.Started, from)).Ticks)) / (double)window.Ticks).ToList();
                return new PipelineGenerationMetrics(groups, newTokens, elapsed, tpot, window, utilisation, _resumes);
            }
        }

        private static DateTime Min(DateTime a, DateTime b) => a < b ? a : b;

        private static DateTime Max(DateTime a, DateTime b) => a > b ? a : b;
    }
}
