using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Actors.Tests.Kernel.Supervision;

/// <summary>A device whose forward pass throws: the batch fails alone, and a bad device state reloads the model.</summary>
public sealed class DeviceSupervisionTests : TestKit
{
    private static readonly DeviceRecovery Quick = new() { MinBackoff = TimeSpan.FromMilliseconds(10), MaxBackoff = TimeSpan.FromMilliseconds(50), MaxReloads = 2 };

    public DeviceSupervisionTests()
        : base(DistributedInferenceConfig.Default())
    {
    }

    [Fact]
    public async Task A_plain_error_fails_only_its_batch_and_keeps_the_model()
    {
        var script = new ScriptedReplicaFactory { Throw = (call, _) => { if (call == 1) throw new InvalidOperationException("boom"); } };
        var device = Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, script.Factory, recovery: Quick));

        device.Tell(new RunBatch("job", 0, new object[] { 1, 2 }));
        device.Tell(new RunBatch("job", 1, new object[] { 3 }));
        var failed = await ExpectMsgAsync<BatchFailed>(TimeSpan.FromSeconds(20));
        var completed = await ExpectMsgAsync<BatchCompleted>(TimeSpan.FromSeconds(20));

        Assert.True(failed.Retryable);
        Assert.Equal(0, failed.BatchIndex);
        Assert.Contains("boom", failed.Reason, StringComparison.Ordinal);
        Assert.Equal(1, completed.BatchIndex);
        Assert.Equal(1, script.Loads);
        Assert.Equal(0, script.Disposed);
    }

    [Fact]
    public async Task A_bad_device_state_reloads_the_model_and_later_batches_run_on_the_new_one()
    {
        var script = new ScriptedReplicaFactory { Throw = (call, _) => { if (call == 1) throw new DeviceStateException("CUDA error: an illegal memory access was encountered"); } };
        var device = Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, script.Factory, recovery: Quick));

        device.Tell(new RunBatch("job", 0, new object[] { 1, 2 }));
        device.Tell(new RunBatch("job", 1, new object[] { 3 }));
        var failed = await ExpectMsgAsync<BatchFailed>(TimeSpan.FromSeconds(20));
        var completed = await ExpectMsgAsync<BatchCompleted>(TimeSpan.FromSeconds(20));

        Assert.True(failed.Retryable);
        Assert.Equal(1, completed.BatchIndex);
        Assert.Equal(new object[] { 3 }, (object[])completed.Results);
        Assert.Equal(2, script.Loads);
        Assert.Equal(1, script.Disposed);
    }

    [Fact]
    public async Task A_device_that_keeps_failing_after_its_reloads_stops()
    {
        var script = new ScriptedReplicaFactory { Throw = (_, _) => throw new DeviceStateException("device-side assert triggered") };
        var device = Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, script.Factory, recovery: Quick));
        Watch(device);

        for (var i = 0; i <= Quick.MaxReloads; i++)
        {
            device.Tell(new RunBatch("job", i, new object[] { i }));
        }

        for (var i = 0; i <= Quick.MaxReloads; i++)
        {
            Assert.Equal(i, (await ExpectMsgAsync<BatchFailed>(TimeSpan.FromSeconds(20))).BatchIndex);
        }

        await ExpectTerminatedAsync(device, TimeSpan.FromSeconds(20));
        Assert.Equal(Quick.MaxReloads + 1, script.Loads);
        Assert.Equal(Quick.MaxReloads + 1, script.Disposed);
    }

    [Fact]
    public void Backoff_doubles_from_the_minimum_up_to_the_maximum()
    {
        var recovery = new DeviceRecovery { MinBackoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(5) };
        Assert.Equal(new[] { 1.0, 2, 4, 5, 5 }, Enumerable.Range(1, 5).Select(n => recovery.Backoff(n).TotalSeconds));
    }

    [Fact]
    public async Task A_job_whose_device_needs_a_reload_still_answers_every_row_once()
    {
        var flaky = new ScriptedReplicaFactory { Throw = (call, _) => { if (call == 1) throw new DeviceStateException("CUDA error: unspecified launch failure"); } };
        var healthy = new ScriptedReplicaFactory();
        var devices = new[]
        {
            Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, flaky.Factory, recovery: Quick), "flaky"),
            Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, healthy.Factory, recovery: Quick), "healthy"),
        };
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var client = CreateTestProbe();

        splitter.Tell(new SubmitJob("job", Enumerable.Range(0, 20).Cast<object>().ToArray(), new JobOptions(MaxBatchSize: 2), client.Ref));
        await client.ExpectMsgAsync<JobAccepted>();
        var streamed = new List<RowsCompleted>();
        JobCompleted? completed = null;
        while (completed is null)
        {
            switch (await client.ReceiveOneAsync(TimeSpan.FromSeconds(30)))
            {
                case RowsCompleted rows:
                    streamed.Add(rows);
                    break;
                case JobCompleted done:
                    completed = done;
                    break;
                case var other:
                    throw new Xunit.Sdk.XunitException($"unexpected {other}");
            }
        }

        Assert.Equal(Enumerable.Range(0, 20), ((object[])completed.Results!).Cast<int>());
        Assert.Equal(Enumerable.Range(0, 20), streamed.SelectMany(s => Enumerable.Range(s.Start, s.Count)).Order());
        Assert.Equal(1, completed.Statistics.ResentBatches);
        Assert.Equal(2, flaky.Loads);
    }
}
