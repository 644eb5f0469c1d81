using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>
/// A job's coordinator owns its job and lives as long as it: one control node whose only device is a test probe (it
/// holds the batches it is sent until the test answers them), with sharding's idle passivation lowered far below the
/// jobs' length.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class JobCoordinatorLifetimeTests : TestKit, IAsyncLifetime
{
    private static readonly TimeSpan IdleTime = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly TestProbe _device;
    private IActorRef _region = ActorRefs.Nobody;

    public JobCoordinatorLifetimeTests(ITestOutputHelper output)
        : base(ConfigurationFactory.ParseString($"akka.cluster.sharding.passivate-idle-entity-after = {IdleTime.TotalMilliseconds}ms")
            .WithFallback(DistributedInferenceConfig.Cluster("127.0.0.1", 0, [DeviceManager.Role, JobSharding.ControlRole])), output: output)
    {
        LibTorch.Initialize();
        _device = CreateTestProbe("device");
        Sys.ActorOf(Props.Create(() => new ProbeDevices(_device.Ref)), DeviceManager.ActorName);
    }

    public async Task InitializeAsync()
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        var up = new TaskCompletionSource();
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        cluster.Join(cluster.SelfAddress);
        await up.Task.WaitAsync(Timeout);
        _region = JobSharding.StartRegion(Sys, TimeSpan.FromMinutes(1));
        var registry = Sys.ActorSelection($"/user/{JobSharding.RegistryName}");
        await AwaitAssertAsync(async () => Assert.Single((await registry.Ask<DeviceList>(GetDevices.Instance, Timeout)).Devices), Timeout);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private static Tensor Rows() => arange(8, ScalarType.Float32).view(4, 2);

    private SubmitJob Submit(string jobId, IActorRef client, Tensor rows) =>
        new(jobId, RowBatch.From(rows.alias()), new JobOptions(MaxBatchSize: 1), client, StreamResults: false);

    // The probe device answers a batch with its own rows (ownership moves back to the job).
    private static void Answer(RunBatch batch, IActorRef job, IActorRef device) =>
        job.Tell(new BatchCompleted(batch.JobId, batch.BatchIndex, batch.Rows, TimeSpan.Zero), device);

    // From now on the probe device answers every batch it is sent at once.
    private void AnswerEveryBatch() =>
        _device.SetAutoPilot(new DelegateAutoPilot((sender, message) =>
        {
            if (message is RunBatch batch)
            {
                Answer(batch, sender, _device.Ref);
            }

            return AutoPilot.KeepRunning;
        }));

    [Fact]
    public async Task A_job_running_longer_than_the_passivation_idle_time_keeps_its_coordinator_and_completes()
    {
        using var rows = Rows();
        var client = CreateTestProbe();
        _region.Tell(Submit("long", client.Ref, rows));
        client.ExpectMsg<JobAccepted>(Timeout);
        var coordinator = client.LastSender;
        client.Watch(coordinator);

        // The job's messages reach its coordinator directly, never through the region: to the region it looks idle while
        // the device holds the first batches for many of its idle times.
        var held = new[] { _device.ExpectMsg<RunBatch>(Timeout), _device.ExpectMsg<RunBatch>(Timeout) };
        var job = _device.LastSender;
        await Task.Delay(IdleTime * 8);
        AnswerEveryBatch();
        foreach (var batch in held)
        {
            Answer(batch, job, _device.Ref);
        }

        AnswerEveryBatch();
        var end = client.FishForMessage(m => m is JobCompleted or JobFailed or Terminated, Timeout);
        var completed = Assert.IsType<JobCompleted>(end);
        using var results = (Tensor)completed.Results!.Value;
        Assert.True(results.equal(rows).all().ToBoolean());
        Assert.Equal(JobState.Completed, (await _region.Ask<JobStatus>(new GetJobStatus("long"), Timeout)).State);
    }

    [Fact]
    public void A_coordinator_stopped_mid_job_stops_its_job_and_the_devices_drop_its_batches()
    {
        using var rows = Rows();
        var client = CreateTestProbe();
        _region.Tell(Submit("stopped", client.Ref, rows));
        client.ExpectMsg<JobAccepted>(Timeout);
        var coordinator = client.LastSender;
        _device.ExpectMsg<RunBatch>(Timeout).Rows.Dispose();
        _device.ExpectMsg<RunBatch>(Timeout).Rows.Dispose();
        var job = _device.LastSender;
        var watcher = CreateTestProbe();
        watcher.Watch(job);
        watcher.Watch(coordinator);

        // Lost, as when a coordinator stops without its job ending (its node leaves, a stop from outside).
        Sys.Stop(coordinator);
        Assert.Equal("stopped", _device.ExpectMsg<DropJob>(Timeout).JobId);
        Assert.Equal(job, watcher.ExpectMsg<Terminated>(Timeout).ActorRef);
        Assert.Equal(coordinator, watcher.ExpectMsg<Terminated>(Timeout).ActorRef);
    }

    [Fact]
    public async Task The_same_job_submitted_again_after_its_coordinator_was_lost_runs_and_completes()
    {
        using var rows = Rows();
        var first = CreateTestProbe();
        _region.Tell(Submit("again", first.Ref, rows));
        first.ExpectMsg<JobAccepted>(Timeout);
        var coordinator = first.LastSender;
        _device.ExpectMsg<RunBatch>(Timeout).Rows.Dispose();
        _device.ExpectMsg<RunBatch>(Timeout).Rows.Dispose();
        var watcher = CreateTestProbe();
        watcher.Watch(coordinator);
        Sys.Stop(coordinator);
        watcher.ExpectTerminated(coordinator, Timeout);

        // Once the region has a new coordinator for the id (it knows nothing of the first one's job), the client submits again.
        await AwaitAssertAsync(async () => Assert.Equal(JobState.Unknown, (await _region.Ask<JobStatus>(new GetJobStatus("again"), TimeSpan.FromSeconds(3))).State), Timeout);
        var again = CreateTestProbe();
        AnswerEveryBatch();
        _region.Tell(Submit("again", again.Ref, rows));
        var end = again.FishForMessage(m => m is JobCompleted or JobFailed, Timeout);
        var completed = Assert.IsType<JobCompleted>(end);
        using var results = (Tensor)completed.Results!.Value;
        Assert.True(results.equal(rows).all().ToBoolean());
    }

    // The node's device manager, as the registry finds it: one device, the test's probe.
    private sealed class ProbeDevices : ReceiveActor
    {
        public ProbeDevices(IActorRef device) =>
            Receive<GetLocalDevices>(_ => Sender.Tell(new DeviceList([device])));
    }
}
