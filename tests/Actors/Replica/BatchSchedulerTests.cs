using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Tests.Replica;

/// <summary>The replica job's policy on its own: no actors, no tensors, devices named by strings.</summary>
public sealed class BatchSchedulerTests
{
    private static BatchScheduler<string> Scheduler(int rows, int devices, int maxBatch = 1, int maxAttempts = 3, bool padding = false) =>
        new(Enumerable.Range(0, devices).Select(d => $"d{d}").ToList(), BatchPlan.Cut(rows, devices, maxBatch, padding), maxAttempts);

    [Fact]
    public void Batches_follow_accelerates_split_cut_to_the_batch_size()
    {
        var plan = BatchPlan.Cut(7, 2, maxBatchSize: 3, applyPadding: true);
        Assert.Equal([new Batch(0, 3, 0), new Batch(3, 1, 0)], plan[0]);
        Assert.Equal([new Batch(4, 3, 0), new Batch(7, 0, 1)], plan[1]);
    }

    [Fact]
    public void Each_device_keeps_two_batches_in_flight_from_its_own_share()
    {
        var scheduler = Scheduler(rows: 8, devices: 2);
        var first = scheduler.NextForAll();
        Assert.Equal([("d0", 0), ("d0", 1), ("d1", 4), ("d1", 5)], first);
        Assert.Empty(scheduler.Next("d0"));
        Assert.True(scheduler.Completed("d0", 0));
        Assert.Equal([2], scheduler.Next("d0"));
    }

    [Fact]
    public void A_device_out_of_work_steals_from_the_tail_of_the_busiest_queue()
    {
        var scheduler = Scheduler(rows: 8, devices: 2);
        scheduler.NextForAll();
        foreach (var batch in new[] { 0, 1 })
        {
            scheduler.Completed("d0", batch);
        }

        Assert.Equal([2, 3], scheduler.Next("d0"));
        scheduler.Completed("d0", 2);
        scheduler.Completed("d0", 3);
        Assert.Equal([7, 6], scheduler.Next("d0"));
    }

    [Fact]
    public void A_failed_batch_goes_first_to_another_device_and_a_late_duplicate_is_ignored()
    {
        var scheduler = Scheduler(rows: 4, devices: 2);
        scheduler.NextForAll();
        var retry = scheduler.Failed("d0", 0, "boom");
        Assert.Equal(RetryKind.Queued, retry.Kind);
        Assert.Equal(1, scheduler.Resent);
        scheduler.Completed("d1", 2);
        Assert.Equal([0], scheduler.Next("d1"));
        Assert.True(scheduler.Completed("d1", 0));
        Assert.False(scheduler.Completed("d0", 0));
    }

    [Fact]
    public void A_batch_that_fails_every_attempt_is_split_down_to_the_one_row_at_fault()
    {
        var scheduler = Scheduler(rows: 4, devices: 1, maxBatch: 4, maxAttempts: 1);
        Assert.Equal([0], scheduler.Next("d0"));
        Assert.Equal(RetryKind.Split, scheduler.Failed("d0", 0, "boom").Kind);

        // Halves: [2,4) queued first, then [0,2) before it.
        var halves = scheduler.Next("d0");
        Assert.Equal([new Batch(0, 2, 0), new Batch(2, 2, 0)], halves.Select(b => scheduler.Batches[b]));
        scheduler.Completed("d0", halves[1]);
        Assert.Equal(RetryKind.Split, scheduler.Failed("d0", halves[0], "boom").Kind);
        var singles = scheduler.Next("d0");
        Assert.Equal([new Batch(0, 1, 0), new Batch(1, 1, 0)], singles.Select(b => scheduler.Batches[b]));
        scheduler.Completed("d0", singles[0]);
        var failed = scheduler.Failed("d0", singles[1], "boom");
        Assert.Equal((RetryKind.RowFailed, 1), (failed.Kind, failed.FailedRow));
        Assert.True(scheduler.Done);
    }

    [Fact]
    public void A_device_that_stops_hands_its_queue_and_its_batches_in_flight_to_the_others()
    {
        var scheduler = Scheduler(rows: 6, devices: 2);
        scheduler.NextForAll();
        var lost = scheduler.Stopped("d0")!;
        Assert.Equal(3, lost.Batches);
        Assert.False(lost.NoDevicesLeft);
        Assert.Equal(2, lost.Retries.Count(r => r.Kind == RetryKind.Queued));
        scheduler.Completed("d1", 3);
        scheduler.Completed("d1", 4);
        Assert.Equal(2, scheduler.Next("d1").Count);
        Assert.Null(scheduler.Stopped("d0"));
        Assert.True(scheduler.Stopped("d1")!.NoDevicesLeft);
    }

    [Fact]
    public void A_device_that_times_out_gets_no_new_work_until_it_answers()
    {
        var scheduler = Scheduler(rows: 4, devices: 2);
        scheduler.NextForAll();
        Assert.Equal(RetryKind.Queued, scheduler.TimedOut(0, 1, "no answer").Kind);
        Assert.Equal(RetryKind.None, scheduler.TimedOut(0, 1, "no answer").Kind);
        Assert.Empty(scheduler.Next("d0"));
        scheduler.Completed("d0", 1);
        Assert.NotEmpty(scheduler.Next("d0"));
    }

    [Fact]
    public void A_device_that_joins_late_steals_work()
    {
        var scheduler = Scheduler(rows: 6, devices: 1);
        scheduler.Next("d0");
        scheduler.Join("late");
        Assert.Equal([5, 4], scheduler.Next("late"));
    }

    [Fact]
    public void Every_batch_is_answered_once_whatever_fails_or_stops()
    {
        var random = new Random(7);
        for (var trial = 0; trial < 50; trial++)
        {
            var scheduler = Scheduler(rows: 20, devices: 3, maxBatch: 3, maxAttempts: 2);
            var answered = new Dictionary<int, int>();
            var alive = new List<string> { "d0", "d1", "d2" };
            var inFlight = scheduler.NextForAll().ToList();
            while (!scheduler.Done && inFlight.Count > 0)
            {
                var (device, batch) = inFlight[random.Next(inFlight.Count)];
                inFlight.Remove((device, batch));
                if (random.NextDouble() < 0.2)
                {
                    scheduler.Failed(device, batch, "flaky");
                }
                else if (scheduler.Completed(device, batch))
                {
                    answered[batch] = answered.GetValueOrDefault(batch) + 1;
                }

                if (alive.Count > 1 && random.NextDouble() < 0.03)
                {
                    var gone = alive[^1];
                    alive.Remove(gone);
                    scheduler.Stopped(gone);
                    inFlight.RemoveAll(f => f.Device == gone);
                }

                inFlight.AddRange(scheduler.NextForAll());
            }

            Assert.True(scheduler.Done);
            Assert.All(answered.Values, count => Assert.Equal(1, count));
        }
    }
}
