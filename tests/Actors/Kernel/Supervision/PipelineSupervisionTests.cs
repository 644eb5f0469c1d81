using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Tests.Kernel.Supervision;

/// <summary>Pipeline stages and coordinators that throw are stopped, never restarted: calls fail clearly, nothing stalls.</summary>
public sealed class PipelineSupervisionTests : TestKit
{
    public PipelineSupervisionTests()
        : base(DistributedInferenceConfig.Default())
    {
    }

    private Task<PipelineRuntime> Start(params IStageWork[] stages) =>
        PipelineRuntime.StartAsync(stages.Select(s => (Func<IStageWork>)(() => s)).ToList(), Sys);

    [Fact]
    public async Task A_stage_that_throws_breaks_the_pipeline_and_calls_fail_instead_of_stalling()
    {
        using var gate = new Blocking();
        await using var pipeline = await Start(gate, new SimulatedStageWork(TimeSpan.Zero));
        var running = pipeline.RunAsync(new object[] { 1, 2 }, numChunks: 1);
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(30));

        // Stage 1 fails while stage 0 still holds the call's micro-batch.
        Watch(pipeline.Stages[1]);
        pipeline.Stages[1].Tell(Kill.Instance);
        await ExpectTerminatedAsync(pipeline.Stages[1], TimeSpan.FromSeconds(30));
        var error = await Assert.ThrowsAsync<JobFailedException>(() => running);
        Assert.Contains("pipeline stage 1 stopped", error.Message, StringComparison.Ordinal);
        gate.Release();

        var later = await Assert.ThrowsAsync<JobFailedException>(() => pipeline.RunAsync(new object[] { 3 }, numChunks: 1));
        Assert.Contains("pipeline stage 1 stopped", later.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_coordinator_that_throws_fails_its_calls_and_is_not_restarted()
    {
        using var gate = new Blocking();
        await using var pipeline = await Start(gate);
        var running = pipeline.RunAsync(new object[] { 1 }, numChunks: 1);
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(30));

        // A timing for a stage that does not exist makes the coordinator's handler throw (its parent would restart it).
        Watch(pipeline.Coordinator);
        pipeline.Coordinator.Tell(new StageTiming(99, "no-such-call", 0, TimeSpan.Zero, TimeSpan.Zero));
        var error = await Assert.ThrowsAsync<JobFailedException>(() => running);
        Assert.Contains("the pipeline coordinator failed: ArgumentOutOfRangeException", error.Message, StringComparison.Ordinal);

        // It stops once its stages have (stage 0 lets go of its micro-batch first).
        gate.Release();
        await ExpectTerminatedAsync(pipeline.Coordinator, TimeSpan.FromSeconds(30));

        // A call after the coordinator is gone fails (it watches the coordinator) instead of waiting forever.
        var later = await Assert.ThrowsAsync<JobFailedException>(() => pipeline.RunAsync(new object[] { 2 }, numChunks: 1));
        Assert.Contains("coordinator stopped", later.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_call_that_outlives_the_configured_deadline_fails_instead_of_waiting_forever()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("distributed-inference.job-timeout = 1s").WithFallback(DistributedInferenceConfig.Default());
        var system = ActorSystem.Create("deadline", config);
        try
        {
            using var gate = new Blocking();
            await using var pipeline = await PipelineRuntime.StartAsync([() => gate], system);
            var error = await Assert.ThrowsAsync<JobFailedException>(() => pipeline.RunAsync(new object[] { 1 }, numChunks: 1));
            Assert.Contains("did not finish within", error.Message, StringComparison.Ordinal);
            gate.Release();
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task A_call_whose_token_is_already_cancelled_sends_nothing()
    {
        using var gate = new Blocking();
        await using var pipeline = await PipelineRuntime.StartAsync([() => gate], Sys);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.RunAsync(new object[] { 1 }, numChunks: 1, cancellation: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.StepAsync(new object[] { 1 }, cancelled.Token));

        // The stage is sent the next call only: had the cancelled ones gone out, it would be entered before this one.
        gate.Release();
        var completed = await pipeline.RunAsync(new object[] { 2 }, numChunks: 1);
        Assert.Equal(new object[] { 2 }, (object[])completed.Output!.Value);
        Assert.Equal(1, gate.Entered.CurrentCount);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public async Task Start_up_rejects_a_window_that_is_not_positive(int maxInFlight)
    {
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            PipelineRuntime.StartAsync([() => new SimulatedStageWork(TimeSpan.Zero)], Sys, maxInFlight));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => PipelineRuntime.StartAsync(Array.Empty<Func<IStageWork>>(), Sys));
    }

    [Fact]
    public async Task A_coordinator_given_bad_arguments_says_so_and_stops_instead_of_throwing_from_its_start()
    {
        var coordinator = Sys.ActorOf(PipelineCoordinator.Props([() => new SimulatedStageWork(TimeSpan.Zero)], maxInFlight: 0, TestActor));
        Watch(coordinator);
        var failed = await ExpectMsgAsync<PipelineStartFailed>(TimeSpan.FromSeconds(30));
        Assert.Contains("positive credit window", failed.Reason, StringComparison.Ordinal);
        await ExpectTerminatedAsync(coordinator, TimeSpan.FromSeconds(30));
    }

    // A stage that holds its micro-batch until the test lets it go.
    private sealed class Blocking : IStageWork
    {
        private readonly ManualResetEventSlim _release = new();

        public SemaphoreSlim Entered { get; } = new(0);

        public string Description => "blocking";

        public object Run(object payload)
        {
            Entered.Release();
            _release.Wait(TimeSpan.FromMinutes(1));
            return payload;
        }

        public void Release() => _release.Set();

        public void Dispose()
        {
            _release.Set();
        }
    }
}
