using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Replica.Simulation;

namespace DistributedInference.Actors.Tests.Kernel.Supervision;

/// <summary>A job actor that throws is stopped, never restarted: its client gets one JobFailed and nothing twice.</summary>
public sealed class JobSupervisionTests : TestKit
{
    public JobSupervisionTests()
        : base(DistributedInferenceConfig.Default())
    {
    }

    private static object[] Ints(int count) => Enumerable.Range(0, count).Cast<object>().ToArray();

    // Everything the client got until the job actor stopped (messages from it are in the client's mailbox by then).
    private static List<object> Drain(TestProbe client)
    {
        var messages = new List<object>();
        while (client.HasMessages)
        {
            messages.Add(client.ReceiveOne(TimeSpan.Zero)!);
        }

        return messages;
    }

    private static void AssertNothingTwiceAndOneFailure(List<object> messages)
    {
        Assert.Single(messages.OfType<JobAccepted>());
        var failed = Assert.Single(messages.OfType<JobFailed>());
        Assert.IsType<JobFailed>(messages[^1]);
        Assert.Empty(messages.OfType<JobCompleted>());
        var rows = messages.OfType<RowsCompleted>().SelectMany(r => Enumerable.Range(r.Start, r.Count)).ToList();
        Assert.Equal(rows.Distinct().Count(), rows.Count);
        Assert.False(failed.InputError);
    }

    [Fact]
    public async Task A_job_actor_that_throws_sends_one_JobFailed_and_no_replayed_messages()
    {
        // The third batch's results have no rows (a 0-dimensional tensor): counting them throws inside the job actor.
        var computed = 0;
        var device = Sys.ActorOf(SimulatedDevice.Props("sim", new SimulatedDeviceOptions
        {
            Compute = rows => Interlocked.Increment(ref computed) == 3 ? TorchSharp.torch.tensor(42f) : rows,
        }));
        var splitter = Sys.ActorOf(ReplicaSplitter.Props([device]), "splitter");
        var client = CreateTestProbe();

        splitter.Tell(new SubmitJob("job", Ints(10), new JobOptions(MaxBatchSize: 1), client.Ref));
        await client.ExpectMsgAsync<JobAccepted>();
        var job = await Sys.ActorSelection(splitter.Path / "job-1").ResolveOne(TimeSpan.FromSeconds(10));
        Watch(job);
        await ExpectTerminatedAsync(job, TimeSpan.FromSeconds(30));

        var messages = Drain(client);
        messages.Insert(0, new JobAccepted("job", 10, 10, 1));
        AssertNothingTwiceAndOneFailure(messages);
        Assert.Contains("the job's actor failed", messages.OfType<JobFailed>().Single().Reason, StringComparison.Ordinal);
        Assert.Equal(2, messages.OfType<RowsCompleted>().Count());
    }

    [Fact]
    public async Task A_job_actor_killed_mid_job_is_not_run_again()
    {
        var device = Sys.ActorOf(SimulatedDevice.Props("sim", new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromMilliseconds(50) }));
        var splitter = Sys.ActorOf(ReplicaSplitter.Props([device]), "splitter");
        var client = CreateTestProbe();

        splitter.Tell(new SubmitJob("job", Ints(100), new JobOptions(MaxBatchSize: 1), client.Ref));
        await client.ExpectMsgAsync<JobAccepted>();
        await client.ExpectMsgAsync<RowsCompleted>(TimeSpan.FromSeconds(30));
        var job = await Sys.ActorSelection(splitter.Path / "job-1").ResolveOne(TimeSpan.FromSeconds(10));
        Watch(job);
        job.Tell(Kill.Instance);
        await ExpectTerminatedAsync(job, TimeSpan.FromSeconds(30));

        var messages = Drain(client);
        messages.InsertRange(0, [new JobAccepted("job", 100, 100, 1), new RowsCompleted("job", 0, 1, null, 1, 100)]);
        AssertNothingTwiceAndOneFailure(messages);
        Assert.Contains("the job's actor", messages.OfType<JobFailed>().Single().Reason, StringComparison.Ordinal);

        // The splitter forgot it: the same job id runs again, from the start, as a new job.
        splitter.Tell(new SubmitJob("job", Ints(3), new JobOptions(MaxBatchSize: 3), client.Ref));
        await client.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(30));
        await client.ExpectMsgAsync<RowsCompleted>(TimeSpan.FromSeconds(30));
        await client.ExpectMsgAsync<JobCompleted>(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_job_id_is_free_again_the_moment_its_client_hears_the_job_ended()
    {
        var device = Sys.ActorOf(SimulatedDevice.Props("sim"));
        var splitter = Sys.ActorOf(ReplicaSplitter.Props([device]));
        var client = CreateTestProbe();
        for (var run = 0; run < 20; run++)
        {
            // At once, without waiting for the job's actor to stop: the splitter heard of the end before the client did.
            splitter.Tell(new SubmitJob("job", Ints(2), new JobOptions(MaxBatchSize: 2), client.Ref));
            await client.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(30));
            await client.ExpectMsgAsync<RowsCompleted>(TimeSpan.FromSeconds(30));
            await client.ExpectMsgAsync<JobCompleted>(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task Bad_input_never_throws_from_the_jobs_start_it_fails_the_job()
    {
        var device = Sys.ActorOf(SimulatedDevice.Props("sim"));
        var splitter = Sys.ActorOf(ReplicaSplitter.Props([device]));
        var client = CreateTestProbe();

        splitter.Tell(new SubmitJob("job", TorchSharp.torch.tensor(1f), new JobOptions(), client.Ref));
        var failed = await client.ExpectMsgAsync<JobFailed>(TimeSpan.FromSeconds(30));
        Assert.True(failed.InputError);
        splitter.Tell(new SubmitJob("job2", Ints(2), new JobOptions(MaxBatchSize: 0), client.Ref));
        failed = await client.ExpectMsgAsync<JobFailed>(TimeSpan.FromSeconds(30));
        Assert.True(failed.InputError);
        Assert.False(client.HasMessages);
    }
}
