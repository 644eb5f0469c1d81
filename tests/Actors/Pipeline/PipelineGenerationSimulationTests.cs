using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Staging;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Pipeline;

/// <summary>
/// Pipelined generation on simulated stages: with at least as many micro-batches as stages, the stages decode at the
/// same time; with one micro-batch, one stage at a time. Counted by the stages themselves (how many run at once), not
/// timed: how busy they keep is di bench pipeline-generate's to measure (98-99.9% on a quiet machine, docs/benchmarks.md).
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class PipelineGenerationSimulationTests
{
    private readonly ITestOutputHelper _output;

    public PipelineGenerationSimulationTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Eight_micro_batches_keep_four_stages_busy_at_once_while_decoding_and_one_keeps_one()
    {
        // Off xUnit's synchronisation context (two threads for every test), as di runs it.
        var (eight, eightAtOnce) = await Task.Run(() => Generate(chunks: 8));
        var (one, oneAtOnce) = await Task.Run(() => Generate(chunks: 1));
        _output.WriteLine($"8 micro-batches: at most {eightAtOnce} stages decoding at once; utilisation {string.Join(" ", eight.DecodeUtilisation.Select(u => u.ToString("P1")))}, TPOT {eight.TimePerOutputToken.TotalMilliseconds:F1} ms");
        _output.WriteLine($"1 micro-batch:  at most {oneAtOnce} stage decoding at once; utilisation {string.Join(" ", one.DecodeUtilisation.Select(u => u.ToString("P1")))}, TPOT {one.TimePerOutputToken.TotalMilliseconds:F1} ms");

        Assert.Equal(8 * 32, eight.NewTokens);
        Assert.Equal(4, eight.DecodeUtilisation.Count);
        // One micro-batch is at one stage at a time (its next step leaves only when the last stage's logits are back);
        // eight fill the pipe, so every stage decodes while the others do.
        Assert.Equal(1, oneAtOnce);
        Assert.Equal(4, eightAtOnce);
    }

    private static async Task<(PipelineGenerationMetrics Metrics, int MostAtOnce)> Generate(int chunks)
    {
        var decoding = new Concurrency();
        await using var pipeline = await PipelineRuntime.StartAsync(
            Enumerable.Range(0, 4).Select(s => (Func<IStageWork>)(() => new Counted(new SimulatedDecoderWork(TimeSpan.FromMilliseconds(25), TimeSpan.Zero, last: s == 3), decoding))).ToList(),
            maxInFlight: 8);
        using var ids = zeros([8, 1], ScalarType.Int64);
        var result = await PipelineGeneration.GenerateAsync(pipeline, ids, null, null, new GenerationOptions(MaxNewTokens: 32), [], 0, chunks);
        Assert.Equal(Enumerable.Repeat(1L, 8 * 32), result.OutputIds.narrow(1, 1, 32).contiguous().data<long>().ToArray());
        result.OutputIds.Dispose();
        return (result.Metrics, decoding.Most);
    }

    // How many stages are inside a decode step at once, and the most there ever were.
    private sealed class Concurrency
    {
        private int _now;
        private int _most;

        public int Most => Volatile.Read(ref _most);

        public void Enter()
        {
            var now = Interlocked.Increment(ref _now);
            for (var most = Volatile.Read(ref _most); now > most; most = Volatile.Read(ref _most))
            {
                Interlocked.CompareExchange(ref _most, now, most);
            }
        }

        public void Leave() => Interlocked.Decrement(ref _now);
    }

    // A stage's work that counts itself in while it runs a decode step (not a prefill, nor the release of a finished micro-batch).
    private sealed class Counted(IStageWork inner, Concurrency decoding) : IStageWork
    {
        public string Description => inner.Description;

        public object Run(object payload)
        {
            if (!GenerationStep.TryRead(payload, out var step) || step.Release || step.Capacity > 0)
            {
                return inner.Run(payload);
            }

            decoding.Enter();
            try
            {
                return inner.Run(payload);
            }
            finally
            {
                decoding.Leave();
            }
        }

        public void Dispose() => inner.Dispose();
    }
}

/// <summary>Pipelined generation holds the key/value caches of the rows in flight only, whatever the number of rows.</summary>
public sealed class PipelineGenerationMemoryTests
{
    [Fact]
    public async Task At_most_max_batch_size_rows_hold_a_cache_at_once_and_every_row_is_generated()
    {
        var counter = new LiveSequences();
        await using var pipeline = await PipelineRuntime.StartAsync(
            Enumerable.Range(0, 2).Select(s => (Func<IStageWork>)(() => new Counting(new SimulatedDecoderWork(TimeSpan.Zero, TimeSpan.Zero, last: s == 1), s == 0 ? counter : null))).ToList());
        using var ids = zeros([40, 1], ScalarType.Int64);

        var result = await PipelineGeneration.GenerateAsync(pipeline, ids, null, null, new GenerationOptions(MaxNewTokens: 4), [], 0, numChunks: 2, maxBatchSize: 4);

        using (result.OutputIds)
        {
            Assert.Equal(Enumerable.Repeat(1L, 40 * 4), result.OutputIds.narrow(1, 1, 4).contiguous().data<long>().ToArray());
        }

        // 40 rows, 4 in flight as 2 micro-batches of 2: 20 micro-batches, never more than 2 with a cache (4 rows).
        Assert.Equal(20, result.Metrics.MicroBatches);
        Assert.InRange(counter.MostRows, 1, 4);
        Assert.Equal(0, counter.Rows);
    }

    // The first stage's view of which sequences hold a cache (from their first step to their release) and their rows.
    private sealed class LiveSequences
    {
        private readonly Dictionary<string, long> _live = [];

        public int Rows { get; private set; }

        public int MostRows { get; private set; }

        public void Saw(GenerationStep step)
        {
            lock (_live)
            {
                if (step.Release)
                {
                    _live.Remove(step.Sequence);
                }
                else
                {
                    _live.TryAdd(step.Sequence, step.Hidden.shape[0]);
                }

                Rows = (int)_live.Values.Sum();
                MostRows = Math.Max(MostRows, Rows);
            }
        }
    }

    private sealed class Counting(IStageWork inner, LiveSequences? counter) : IStageWork
    {
        public string Description => inner.Description;

        public object Run(object payload)
        {
            if (counter is not null && GenerationStep.TryRead(payload, out var step))
            {
                counter.Saw(step);
            }

            return inner.Run(payload);
        }

        public void Dispose() => inner.Dispose();
    }
}
