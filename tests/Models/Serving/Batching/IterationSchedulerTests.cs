using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Models.Tests.Serving.Batching;

/// <summary>
/// The iteration-level scheduler with a simulated model (<see cref="SimulatedPagedModel"/> checks every block table
/// against the tokens it should hold) and a virtual clock: no tensors, no time.
/// </summary>
public sealed class IterationSchedulerTests
{
    [Fact]
    public void A_request_joins_the_running_batch_at_the_next_step_and_leaves_when_done()
    {
        var h = new SchedulerHarness(blocks: 64, blockSize: 4);
        var a = h.Add(SchedulerHarness.Sequence("a", prompt: 8, newTokens: 50));
        for (var i = 0; i < 5; i++)
        {
            h.Step();
        }

        var b = h.Add(SchedulerHarness.Sequence("b", prompt: 8, newTokens: 5, seed: 1));
        var arrival = h.Steps;
        h.Step();
        Assert.Equal(arrival + 1, h.Produced["b"][0].Step);
        Assert.Equal(2, h.Plans[^1].Chunks.Count);

        while (b.State != SequenceState.Finished)
        {
            h.Step();
        }

        Assert.Equal(arrival + 5, h.FinishedAt["b"]);
        Assert.Equal([a], h.Scheduler.Running);
        Assert.Equal(a.Blocks.Count, h.Pool.UsedBlocks);
        Assert.Equal(h.Steps, h.Produced["a"].Count);

        h.RunUntilIdle();
        Assert.Equal(0, h.Pool.UsedBlocks);
        Assert.Equal(SchedulerHarness.Alone(a, 64, 4), SchedulerHarness.Output(a));
        Assert.Equal(SchedulerHarness.Alone(b, 64, 4), SchedulerHarness.Output(b));
    }

    [Fact]
    public void A_long_prompt_prefills_in_chunks_while_the_running_sequences_decode()
    {
        var h = new SchedulerHarness(blocks: 128, blockSize: 4, new IterationSchedulerOptions(MaxSequences: 8, MaxTokensPerStep: 32, PrefillChunk: 16));
        var a = h.Add(SchedulerHarness.Sequence("a", prompt: 4, newTokens: 40));
        h.Step();
        h.Step();
        var b = h.Add(SchedulerHarness.Sequence("b", prompt: 100, newTokens: 3, seed: 2));
        var arrival = h.Steps;
        var before = h.Produced["a"].Count;
        while (!h.Produced.ContainsKey("b"))
        {
            h.Step();
        }

        // 100 prompt tokens in chunks of 16: 7 iterations, and a decode token for a in every one of them.
        Assert.Equal(arrival + 7, h.Produced["b"][0].Step);
        Assert.Equal(7, h.Produced["a"].Count - before);
        Assert.All(h.Plans.Skip(arrival), plan => Assert.True(plan.Tokens <= 32));
        Assert.All(h.Plans.Skip(arrival), plan => Assert.Contains(plan.Chunks, c => c.Sequence == b && c.Count <= 16));

        // On the virtual clock, a's gaps while b prefills are one chunk's cost, not the whole prompt's.
        var gaps = h.Produced["a"].Zip(h.Produced["a"].Skip(1), (x, y) => y.Time - x.Time).ToList();
        Assert.True(gaps.Max() <= 1 + (0.1 * (16 + 1)) + 1e-9, $"longest gap between a's tokens: {gaps.Max()}");

        h.RunUntilIdle();
        Assert.Equal(SchedulerHarness.Alone(b, 128, 4), SchedulerHarness.Output(b));
        Assert.Equal(SchedulerHarness.Alone(a, 128, 4), SchedulerHarness.Output(a));
    }

    [Fact]
    public void Admission_waits_for_free_blocks_first_come_first_served()
    {
        // 4 blocks of 4 positions: a takes 3 for its prompt and grows into the 4th; b needs 2 and waits; c would fit
        // in 1 but arrived after b and does not overtake it.
        var h = new SchedulerHarness(blocks: 4, blockSize: 4, new IterationSchedulerOptions(PrefixCaching: false));
        var a = h.Add(SchedulerHarness.Sequence("a", prompt: 12, newTokens: 4));
        h.Step();
        var b = h.Add(SchedulerHarness.Sequence("b", prompt: 8, newTokens: 2, seed: 1));
        var c = h.Add(SchedulerHarness.Sequence("c", prompt: 2, newTokens: 1, seed: 2));
        while (a.State != SequenceState.Finished)
        {
            h.Step();
            Assert.Equal(SequenceState.Waiting, b.State);
            Assert.Equal(SequenceState.Waiting, c.State);
        }

        h.Step();
        Assert.Equal(SequenceState.Running, b.State);
        Assert.True(h.Pool.UsedBlocks <= h.Pool.TotalBlocks);
        h.RunUntilIdle();
        Assert.True(h.Produced["b"][0].Step <= h.Produced["c"][0].Step, "c overtook b");
        Assert.Equal(SchedulerHarness.Alone(c, 4, 4), SchedulerHarness.Output(c));
        Assert.Equal(0, h.Pool.UsedBlocks);
    }

    [Fact]
    public void A_full_cache_preempts_the_newest_sequence_which_is_recomputed_to_the_same_tokens()
    {
        // 6 blocks of 4: each sequence ends needing 5 (4 + 16 - 1 positions), so both cannot finish side by side.
        var h = new SchedulerHarness(blocks: 6, blockSize: 4);
        var a = h.Add(SchedulerHarness.Sequence("a", prompt: 4, newTokens: 16));
        var b = h.Add(SchedulerHarness.Sequence("b", prompt: 4, newTokens: 16, seed: 1));
        h.Step();
        Assert.Equal(2, h.Scheduler.Running.Count);
        h.RunUntilIdle();

        Assert.Equal(0, a.Preemptions);
        Assert.True(b.Preemptions >= 1, "b was never preempted");
        Assert.Contains(h.Plans, p => p.Preempted.Contains(b));
        Assert.True(h.FinishedAt["a"] < h.FinishedAt["b"]);
        Assert.Equal(16, SchedulerHarness.Output(b).Count);
        Assert.Equal(SchedulerHarness.Alone(a, 6, 4), SchedulerHarness.Output(a));
        Assert.Equal(SchedulerHarness.Alone(b, 6, 4), SchedulerHarness.Output(b));
        Assert.Equal(0, h.Pool.UsedBlocks);
    }

    [Fact]
    public void Sixty_four_requests_sharing_a_1k_token_system_prompt_hold_its_blocks_once()
    {
        var system = SchedulerHarness.Sequence("system", prompt: 1024, newTokens: 1, seed: 9).Tokens.ToList();
        var h = new SchedulerHarness(blocks: 1024, blockSize: 16, new IterationSchedulerOptions(MaxSequences: 64, MaxTokensPerStep: 1024, PrefillChunk: 256));
        var first = h.Add(SchedulerHarness.Sequence("r0", prompt: 10, newTokens: 8, seed: 100, prefix: system));
        while (first.ComputedTokens < 1024)
        {
            h.Step();
        }

        var all = new List<BatchSequence> { first };
        for (var i = 1; i < 64; i++)
        {
            all.Add(h.Add(SchedulerHarness.Sequence($"r{i}", prompt: 10, newTokens: 8, seed: 100 + i, prefix: system)));
        }

        h.Step();
        Assert.Equal(64, h.Scheduler.Running.Count);
        Assert.All(all.Skip(1), s => Assert.Equal(1024, s.CachedPromptTokens));
        var prefixBlocks = first.Blocks.Take(64).ToList();
        Assert.All(all, s => Assert.Equal(prefixBlocks, s.Blocks.Take(64)));
        Assert.All(prefixBlocks, block => Assert.Equal(64, h.Pool.References(block)));

        // 64 prefix blocks once, plus each request's own tail (10 prompt + 8 new tokens: at most 2 blocks).
        Assert.True(h.Pool.UsedBlocks <= 64 + (64 * 2), $"{h.Pool.UsedBlocks} blocks used");
        var (queried, hit) = h.Scheduler.PrefixCacheTokens;
        Assert.Equal(63 * 1024, hit);
        Assert.True(queried >= 64 * 1024);

        h.RunUntilIdle();
        Assert.Equal(SchedulerHarness.Alone(all[17], 1024, 16), SchedulerHarness.Output(all[17]));
        Assert.Equal(0, h.Pool.UsedBlocks);
        Assert.True(h.Pool.CachedBlocks >= 64, "the prefix left the cache although nothing needed its space");
    }

    [Fact]
    public void The_waiting_queue_is_bounded_and_a_request_that_can_never_fit_is_refused()
    {
        var h = new SchedulerHarness(blocks: 16, blockSize: 4, new IterationSchedulerOptions(MaxSequences: 1, MaxTokensPerStep: 8, PrefillChunk: 8, MaxWaiting: 2));
        h.Add(SchedulerHarness.Sequence("a", prompt: 4, newTokens: 4));
        h.Step();
        h.Add(SchedulerHarness.Sequence("b", prompt: 4, newTokens: 4));
        h.Add(SchedulerHarness.Sequence("c", prompt: 4, newTokens: 4));
        Assert.False(h.Scheduler.TryAdd(SchedulerHarness.Sequence("d", prompt: 4, newTokens: 4)));
        Assert.Equal(2, h.Scheduler.Waiting);

        var tooLong = Assert.Throws<InvalidInputException>(() => h.Scheduler.TryAdd(SchedulerHarness.Sequence("e", prompt: 60, newTokens: 10)));
        Assert.Contains("need 18 KV cache blocks", tooLong.Message, StringComparison.Ordinal);

        h.RunUntilIdle();
        Assert.True(h.Scheduler.TryAdd(SchedulerHarness.Sequence("d", prompt: 4, newTokens: 4)));
    }

    [Fact]
    public void A_cancelled_sequence_leaves_at_once_running_or_waiting()
    {
        var h = new SchedulerHarness(blocks: 16, blockSize: 4, new IterationSchedulerOptions(MaxSequences: 1, MaxTokensPerStep: 8, PrefillChunk: 8));
        var a = h.Add(SchedulerHarness.Sequence("a", prompt: 8, newTokens: 20));
        var b = h.Add(SchedulerHarness.Sequence("b", prompt: 4, newTokens: 2));
        h.Step();
        h.Scheduler.Finish(b);
        Assert.Equal(0, h.Scheduler.Waiting);
        h.Scheduler.Finish(a);
        h.Scheduler.Finish(a);
        Assert.True(h.Scheduler.IsIdle);
        Assert.Equal(0, h.Pool.UsedBlocks);
        Assert.Empty(h.Scheduler.Schedule().Chunks);
    }

    [Fact]
    public void Impossible_limits_are_refused()
    {
        var pool = new KvBlockPool(4, 4);
        Assert.Throws<InvalidInputException>(() => new IterationScheduler(pool, new IterationSchedulerOptions(MaxSequences: 0)));
        Assert.Throws<InvalidInputException>(() => new IterationScheduler(pool, new IterationSchedulerOptions(MaxSequences: 64, MaxTokensPerStep: 32)));
        Assert.Throws<InvalidInputException>(() => new IterationScheduler(pool, new IterationSchedulerOptions(MaxTokensPerStep: 128, PrefillChunk: 256)));
    }

    [Fact]
    public void After_the_cache_is_lost_every_running_sequence_is_recomputed_and_no_stale_prefix_is_read()
    {
        var h = new SchedulerHarness(blocks: 64, blockSize: 4);
        var system = Enumerable.Range(100, 16).Select(t => (long)t).ToList();
        var a = h.Add(SchedulerHarness.Sequence("a", prompt: 3, newTokens: 4, prefix: system));
        h.RunUntilIdle();
        var b = h.Add(SchedulerHarness.Sequence("b", prompt: 6, newTokens: 12, seed: 1));
        var c = h.Add(SchedulerHarness.Sequence("c", prompt: 2, newTokens: 12, seed: 2, prefix: system));
        for (var i = 0; i < 3; i++)
        {
            h.Step();
        }

        Assert.True(c.CachedPromptTokens >= 16, "c did not reuse a's prefix: the test no longer covers a stale prefix");
        var preempted = h.Scheduler.ForgetCache();
        h.Model.Lose();

        Assert.Equal([b, c], preempted);
        Assert.Empty(h.Scheduler.Running);
        Assert.Equal(2, h.Scheduler.Waiting);
        Assert.Equal(0, h.Pool.CachedBlocks);
        Assert.Equal(0, h.Pool.UsedBlocks);

        // The simulated model fails any read of a slot not computed since the loss.
        var d = h.Add(SchedulerHarness.Sequence("d", prompt: 5, newTokens: 3, seed: 3, prefix: system));
        h.RunUntilIdle();
        Assert.Equal(SchedulerHarness.Alone(a, 64, 4), SchedulerHarness.Output(a));
        Assert.Equal(SchedulerHarness.Alone(b, 64, 4), SchedulerHarness.Output(b));
        Assert.Equal(SchedulerHarness.Alone(c, 64, 4), SchedulerHarness.Output(c));
        Assert.Equal(SchedulerHarness.Alone(d, 64, 4), SchedulerHarness.Output(d));
    }
}
