using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Tests.Kernel.Settings;

/// <summary>The actors that join results with bulk tensor copies run on the compute dispatcher, not the default pool.</summary>
public sealed class ComputeDispatcherTests : TestKit
{
    public ComputeDispatcherTests()
        : base(DistributedInferenceConfig.Default())
    {
    }

    [Fact]
    public void The_defaults_declare_a_compute_dispatcher_with_threads_of_its_own()
    {
        var config = DistributedInferenceConfig.Default();
        Assert.Equal("ForkJoinDispatcher", config.GetString($"{DistributedInferenceConfig.ComputeDispatcher}.type"));
        Assert.True(config.GetInt($"{DistributedInferenceConfig.ComputeDispatcher}.dedicated-thread-pool.thread-count") >= 1);
        var dispatcher = Sys.Dispatchers.Lookup(DistributedInferenceConfig.ComputeDispatcher);
        Assert.Equal(DistributedInferenceConfig.ComputeDispatcher, dispatcher.Id);
        Assert.NotEqual(Sys.Dispatchers.DefaultGlobalDispatcher.Id, dispatcher.Id);
    }

    [Fact]
    public void Job_and_pipeline_coordinators_run_on_the_compute_dispatcher()
    {
        Assert.Equal(DistributedInferenceConfig.ComputeDispatcher, ReplicaJob.Props(new SubmitJob("job", new object[] { 1 }, new JobOptions(), TestActor), []).Dispatcher);
        Assert.Equal(DistributedInferenceConfig.ComputeDispatcher, JobCoordinator.Props("job", TestActor, TimeSpan.FromMinutes(1)).Dispatcher);
        Assert.Equal(DistributedInferenceConfig.ComputeDispatcher, PipelineCoordinator.Props([() => new SimulatedStageWork(TimeSpan.Zero)], 1).Dispatcher);
    }

    [Fact]
    public async Task A_pipeline_runs_with_its_coordinator_on_the_compute_dispatcher()
    {
        await using var pipeline = await PipelineRuntime.StartAsync([() => new SimulatedStageWork(TimeSpan.Zero)], Sys);
        var completed = await pipeline.RunAsync(new object[] { 1, 2, 3 }, numChunks: 3);
        Assert.Equal([1, 2, 3], ((object[])completed.Output).Cast<int>());
        Assert.Equal(DistributedInferenceConfig.ComputeDispatcher, ((ActorRefWithCell)pipeline.Coordinator).Underlying.Props.Dispatcher);
    }
}
