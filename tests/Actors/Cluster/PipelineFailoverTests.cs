using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>
/// The fail-over actor of a cluster pipeline, driven by probes standing for concurrent calls: one re-plan per lost
/// generation, no runtime disposed while a call holds it, and calls asking during a re-plan get the new runtime.
/// </summary>
public sealed class PipelineFailoverTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private readonly List<FakeRuntime> _built = [];
    private readonly List<bool> _previousDisposedWhenBuilding = [];

    public PipelineFailoverTests()
        : base(DistributedInferenceConfig.Default())
    {
    }

    private int Replans
    {
        get
        {
            lock (_built)
            {
                return _built.Count - 1;
            }
        }
    }

    // Generation 0 is built here; each re-plan builds the next runtime, noting whether the one before was disposed by then.
    private IActorRef Start(Func<int, Task>? beforeBuild = null)
    {
        var first = new FakeRuntime(0);
        _built.Add(first);
        return Sys.ActorOf(PipelineFailover.Props(Planned(first), async token =>
        {
            int generation;
            lock (_built)
            {
                generation = _built.Count;
                _previousDisposedWhenBuilding.Add(_built[^1].Disposed);
            }

            if (beforeBuild is not null)
            {
                await beforeBuild(generation);
            }

            var runtime = new FakeRuntime(generation);
            lock (_built)
            {
                _built.Add(runtime);
            }

            return Planned(runtime);
        }, _ => { }));
    }

    private static PlannedPipeline Planned(FakeRuntime runtime) => new(runtime, null, $"generation {runtime.Generation}");

    private PipelineLease Borrow(IActorRef failover, Akka.TestKit.TestProbe caller, Guid lease)
    {
        failover.Tell(new AcquirePipeline(lease), caller);
        return caller.ExpectMsg<PipelineLease>(Wait);
    }

    [Fact]
    public void A_stage_lost_mid_call_plans_again_once_and_concurrent_callers_wait_for_the_new_runtime()
    {
        var failover = Start();
        var (a, b, c) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());
        var leaseA = Borrow(failover, a, Guid.NewGuid());
        var leaseB = Borrow(failover, b, Guid.NewGuid());
        Assert.Equal(0, leaseA.Generation);
        Assert.Same(_built[0], leaseB.Pipeline.Runtime);

        // A's call loses a stage; B is still in a call on the same runtime, so it is neither disposed nor replaced yet,
        // and C, asking now, waits.
        failover.Tell(new PipelineStageLost(leaseA.Lease, 0, "pipeline stage 2 stopped"), a);
        failover.Tell(new AcquirePipeline(Guid.NewGuid()), c);
        c.ExpectNoMsg(Quiet);
        a.ExpectNoMsg(TimeSpan.Zero);
        Assert.False(_built[0].Disposed);
        Assert.Equal(0, Replans);

        // B's call fails with it: still one re-plan, made once no call holds the old runtime, which is disposed first.
        failover.Tell(new PipelineStageLost(leaseB.Lease, 0, "pipeline stage 2 stopped"), b);
        Assert.Equal(1, a.ExpectMsg<PipelineReplanned>(Wait).Generation);
        Assert.Equal(1, b.ExpectMsg<PipelineReplanned>(Wait).Generation);
        var leaseC = c.ExpectMsg<PipelineLease>(Wait);
        Assert.Equal(1, leaseC.Generation);
        Assert.Same(_built[1], leaseC.Pipeline.Runtime);
        Assert.Equal(1, Replans);
        Assert.Equal([true], _previousDisposedWhenBuilding);
        Assert.True(_built[0].Disposed);
        Assert.False(_built[1].Disposed);

        // A call that was on the lost runtime and reports late does not plan again: the new runtime is already up.
        var late = CreateTestProbe();
        failover.Tell(new PipelineStageLost(Guid.NewGuid(), 0, "pipeline stage 2 stopped"), late);
        Assert.Equal(1, late.ExpectMsg<PipelineReplanned>(Wait).Generation);
        Assert.Equal(1, Replans);
    }

    [Fact]
    public void A_step_that_asks_during_a_re_plan_is_told_its_state_is_gone_instead_of_given_the_new_runtime()
    {
        var building = new TaskCompletionSource();
        var failover = Start(generation => generation == 1 ? building.Task : Task.CompletedTask);
        var (a, step) = (CreateTestProbe(), CreateTestProbe());
        var leaseA = Borrow(failover, a, Guid.NewGuid());
        failover.Tell(new PipelineStageLost(leaseA.Lease, 0, "stage lost"), a);
        failover.Tell(new AcquirePipeline(Guid.NewGuid(), KeepsState: true), step);
        building.SetResult();

        Assert.Equal(1, a.ExpectMsg<PipelineReplanned>(Wait).Generation);
        Assert.Equal(1, step.ExpectMsg<PipelineReplanned>(Wait).Generation);
        Assert.Equal(1, Replans);
    }

    [Fact]
    public void A_runtime_is_disposed_only_once_the_last_call_on_it_has_ended()
    {
        var failover = Start();
        var (a, b) = (CreateTestProbe(), CreateTestProbe());
        var leaseA = Borrow(failover, a, Guid.NewGuid());
        var leaseB = Borrow(failover, b, Guid.NewGuid());

        failover.Tell(new PipelineStageLost(leaseA.Lease, 0, "stage lost"), a);
        a.ExpectNoMsg(Quiet);

        // B's call (on a stage that was not lost) still runs on the old runtime, and ends well.
        Assert.False(_built[0].Disposed);
        failover.Tell(new ReleasePipeline(leaseB.Lease), b);
        Assert.Equal(1, a.ExpectMsg<PipelineReplanned>(Wait).Generation);
        Assert.True(_built[0].Disposed);
        Assert.Equal(1, Replans);
    }

    [Fact]
    public void A_caller_that_gives_up_during_a_re_plan_holds_no_lease_that_would_keep_a_runtime_alive()
    {
        var building = new TaskCompletionSource();
        var failover = Start(generation => generation == 1 ? building.Task : Task.CompletedTask);
        var (a, quitter) = (CreateTestProbe(), CreateTestProbe());
        var leaseA = Borrow(failover, a, Guid.NewGuid());
        failover.Tell(new PipelineStageLost(leaseA.Lease, 0, "stage lost"), a);

        // The quitter asks during the re-plan and gives up before the answer.
        var gaveUp = Guid.NewGuid();
        failover.Tell(new AcquirePipeline(gaveUp), quitter);
        failover.Tell(new ReleasePipeline(gaveUp), quitter);
        building.SetResult();
        Assert.Equal(1, a.ExpectMsg<PipelineReplanned>(Wait).Generation);
        quitter.ExpectNoMsg(Quiet);

        // The next loss finds no call on generation 1 but the one that lost it: it is disposed and replaced at once.
        var again = Borrow(failover, a, Guid.NewGuid());
        failover.Tell(new PipelineStageLost(again.Lease, 1, "stage lost again"), a);
        Assert.Equal(2, a.ExpectMsg<PipelineReplanned>(Wait).Generation);
        Assert.True(_built[1].Disposed);
    }

    [Fact]
    public void When_planning_again_fails_every_waiting_and_later_call_fails_with_the_reason()
    {
        var failover = Start(_ => throw new JobFailedException("0 device node(s) are Up, 1 needed"));
        var (a, later) = (CreateTestProbe(), CreateTestProbe());
        var leaseA = Borrow(failover, a, Guid.NewGuid());
        failover.Tell(new PipelineStageLost(leaseA.Lease, 0, "pipeline stage 1 stopped"), a);

        var failure = a.ExpectMsg<Status.Failure>(Wait);
        var error = Assert.IsType<JobFailedException>(failure.Cause);
        Assert.Equal("pipeline stage 1 stopped; planning again failed: 0 device node(s) are Up, 1 needed", error.Message);
        Assert.True(_built[0].Disposed);

        failover.Tell(new AcquirePipeline(Guid.NewGuid()), later);
        Assert.Equal(error.Message, Assert.IsType<JobFailedException>(later.ExpectMsg<Status.Failure>(Wait).Cause).Message);
    }

    [Fact]
    public void Stopping_disposes_the_current_runtime_and_stops_the_actor()
    {
        var failover = Start();
        Watch(failover);
        failover.Tell(StopPipeline.Instance);
        ExpectMsg<PipelineStopped>(Wait);
        ExpectTerminated(failover, Wait);
        Assert.True(_built[0].Disposed);
    }

    // A runtime that only records whether it was disposed (its calls are played by the probes).
    private sealed class FakeRuntime(int generation) : IPipeline
    {
        private int _disposed;

        public int Generation => generation;

        public bool Disposed => Volatile.Read(ref _disposed) == 1;

        public IReadOnlyList<IActorRef> Stages => [];

        public IReadOnlyList<string> StageDescriptions => [];

        public Task<PipelineCompleted> RunAsync(object input, int? numChunks = null, bool gatherOutput = false, CancellationToken cancellation = default) =>
            throw new NotSupportedException();

        public Task<PipelineStepCompleted> StepAsync(object payload, CancellationToken cancellation = default) => throw new NotSupportedException();

        public Task<PipelineMetrics> MetricsAsync(CancellationToken cancellation = default) => throw new NotSupportedException();

        public ValueTask DisposeAsync()
        {
            Volatile.Write(ref _disposed, 1);
            return ValueTask.CompletedTask;
        }
    }
}
