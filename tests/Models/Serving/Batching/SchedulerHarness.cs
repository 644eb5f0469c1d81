using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Models.Tests.Serving.Batching;

/// <summary>Drives an <see cref="IterationScheduler"/> with a <see cref="SimulatedPagedModel"/>, as an engine loop would, on a virtual clock.</summary>
internal sealed class SchedulerHarness
{
    public SchedulerHarness(int blocks, int blockSize, IterationSchedulerOptions? options = null)
    {
        Pool = new KvBlockPool(blocks, blockSize);
        Scheduler = new IterationScheduler(Pool, options);
        Model = new SimulatedPagedModel(Pool);
    }

    public KvBlockPool Pool { get; }

    public IterationScheduler Scheduler { get; }

    public SimulatedPagedModel Model { get; }

    /// <summary>Iterations run so far.</summary>
    public int Steps { get; private set; }

    /// <summary>For each sequence, the iteration (1-based) and the virtual time at which each of its tokens was chosen.</summary>
    public Dictionary<string, List<(int Step, double Time)>> Produced { get; } = [];

    /// <summary>For each sequence, the iteration at which it left the running set.</summary>
    public Dictionary<string, int> FinishedAt { get; } = [];

    public List<SchedulerStep> Plans { get; } = [];

    public static BatchSequence Sequence(string id, int prompt, int newTokens, int seed = 0, IReadOnlyList<long>? prefix = null)
    {
        var tokens = new List<long>(prefix ?? []);
        for (var i = 0; tokens.Count < (prefix?.Count ?? 0) + prompt; i++)
        {
            tokens.Add(1 + ((seed * 7919) + (i * 31)) % 1000);
        }

        return new BatchSequence(id, tokens, newTokens);
    }

    public BatchSequence Add(BatchSequence sequence)
    {
        Assert.True(Scheduler.TryAdd(sequence), $"{sequence.Id} was refused");
        return sequence;
    }

    public SchedulerStep Step()
    {
        var plan = Scheduler.Schedule();
        Steps++;
        Plans.Add(plan);
        Model.Tick(plan);
        foreach (var chunk in plan.Chunks)
        {
            var token = Model.Compute(chunk);
            Scheduler.Completed(chunk, token);
            if (token is not null)
            {
                var produced = Produced.TryGetValue(chunk.Sequence.Id, out var list) ? list : Produced[chunk.Sequence.Id] = [];
                produced.Add((Steps, Model.Clock));
                if (chunk.Sequence.OutputLength >= chunk.Sequence.MaxNewTokens)
                {
                    Scheduler.Finish(chunk.Sequence);
                    FinishedAt[chunk.Sequence.Id] = Steps;
                }
            }
        }

        return plan;
    }

    public void RunUntilIdle(int maxSteps = 10_000)
    {
        while (!Scheduler.IsIdle)
        {
            Assert.True(Steps < maxSteps, "the scheduler made no progress");
            Step();
        }
    }

    /// <summary>The tokens <paramref name="sequence"/> generates alone, in a pool of the same shape.</summary>
    public static IReadOnlyList<long> Alone(BatchSequence sequence, int blocks, int blockSize)
    {
        var alone = new SchedulerHarness(blocks, blockSize);
        var copy = alone.Add(new BatchSequence(sequence.Id, sequence.Tokens.Take(sequence.PromptLength).ToList(), sequence.MaxNewTokens));
        alone.RunUntilIdle();
        return copy.Tokens.Skip(copy.PromptLength).ToList();
    }

    public static IReadOnlyList<long> Output(BatchSequence sequence) => sequence.Tokens.Skip(sequence.PromptLength).ToList();
}
