using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>Three actor systems in one process form a cluster; a pipeline has one stage on each (tensors cross the wire).</summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterPipelineTests : TestKit, IAsyncLifetime
{
    private static readonly ModelIdentity Model = ModelIdentity.Of(Fixtures.Path("lm"), null);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly ITestOutputHelper _output;
    private InProcessCluster? _cluster;

    public ClusterPipelineTests(ITestOutputHelper output)
        : base((ActorSystem?)null, output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    public async Task InitializeAsync() =>
        _cluster = await InProcessCluster.StartAsync(3, model: null, stages: new ServedStages(Model, InferenceTask.Logits, () => Gpt2StagedModel.Load(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits)));

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    private static Dictionary<string, object> Input() => new() { ["input_ids"] = Fixtures.Expected("input_ids") };

    [Fact]
    public async Task A_pipeline_with_a_stage_on_each_node_reproduces_the_logits_of_transformers()
    {
        var client = _cluster!.Nodes[0];
        var hosts = await ClusterPipelinePlanner.FindHostsAsync(client, 3, Timeout);
        var planned = ClusterPipelinePlanner.Plan(hosts, Model, InferenceTask.Logits, "auto", Precision.Fp32);
        _output.WriteLine(planned.Describe());
        Assert.Equal(3, planned.Hosts.Select(h => h.Node).Distinct().Count());
        Assert.Equal(planned.Hosts[0].Node, Akka.Cluster.Cluster.Get(client).SelfAddress);

        await using var pipeline = await PipelineRuntime.StartAsync(planned.Placements, client);
        Assert.Equal(3, pipeline.Stages.Select(s => s.Path.Address).Distinct().Count());
        var completed = await pipeline.RunAsync(Input(), numChunks: 3, gatherOutput: true);

        var diff = Fixtures.MaxAbsDiff((Tensor)completed.Output, Fixtures.Expected("lm_logits"));

        // Stage to stage and last stage to coordinator: 3 micro-batches on each of the 3 hops between nodes, all on the
        // data plane (and the gathered output to the 2 stages on other nodes, which may still be on its way).
        Assert.InRange(_cluster.Nodes.Sum(n => Actors.Kernel.Transport.TensorDataPlane.For(n)!.FramesReceived), 9, 11);
        _output.WriteLine($"3 nodes, 3 micro-batches: max |diff| {diff:E2}, bubble {completed.Metrics.BubbleFraction:F3}");
        Assert.True(diff <= 1e-4);
        Assert.All(completed.Metrics.Stages, s => Assert.Equal(3, s.MicroBatches));

        // gather_output: the stage on the last node was handed the whole output too, across the wire.
        GatheredOutputs? gathered = null;
        await AwaitAssertAsync(
            async () =>
            {
                gathered = await pipeline.Stages[2].Ask<GatheredOutputs>(GetGatheredOutputs.Instance, TimeSpan.FromSeconds(5));
                Assert.True(gathered.Outputs.Count > 0, "the last stage was never handed the output");
            },
            Timeout,
            TimeSpan.FromMilliseconds(50));

        Assert.True(Fixtures.MaxAbsDiff((Tensor)Assert.Single(gathered!.Outputs).Output, Fixtures.Expected("lm_logits")) <= 1e-4);
        Assert.Equal(11, _cluster.Nodes.Sum(n => Actors.Kernel.Transport.TensorDataPlane.For(n)!.FramesReceived));
    }

    [Fact]
    public async Task Remote_stages_stop_with_their_pipeline()
    {
        var client = _cluster!.Nodes[0];
        var planned = ClusterPipelinePlanner.Plan(await ClusterPipelinePlanner.FindHostsAsync(client, 3, Timeout), Model, InferenceTask.Logits, "auto", Precision.Fp32);
        var pipeline = await PipelineRuntime.StartAsync(planned.Placements, client);
        var remote = pipeline.Stages[2];
        var watcher = CreateTestProbe(client);
        await watcher.WatchAsync(remote);
        await pipeline.DisposeAsync();

        await watcher.ExpectTerminatedAsync(remote, Timeout);
        Assert.Null((await client.ActorSelection(remote.Path).Ask<ActorIdentity>(new Identify(1), Timeout)).Subject);
    }

    [Fact]
    public async Task A_host_serving_another_model_refuses_with_a_clear_error()
    {
        var client = _cluster!.Nodes[0];
        var hosts = await ClusterPipelinePlanner.FindHostsAsync(client, 3, Timeout);
        Assert.Contains("start every node with the job's --model and --task", Assert.Throws<InvalidInputException>(() => ClusterPipelinePlanner.Plan(hosts, ModelIdentity.BuiltIn("gpt2", 0), InferenceTask.Logits, "auto", Precision.Fp32)).Message, StringComparison.Ordinal);
        Assert.Contains($"serves model {Model} (logits), not {Model} (classify)", Assert.Throws<InvalidInputException>(() => ClusterPipelinePlanner.Plan(hosts, Model, InferenceTask.Classify, "auto", Precision.Fp32)).Message, StringComparison.Ordinal);

        var planned = ClusterPipelinePlanner.Plan(hosts, Model, InferenceTask.Logits, "auto", Precision.Fp32);
        var wrong = planned.Placements.Select(p => (StagePlacement)(((HostedStage)p) with { Spec = ((HostedStage)p).Spec with { Device = "cuda:7" } })).ToList();
        var error = await Assert.ThrowsAsync<InvalidInputException>(() => PipelineRuntime.StartAsync(wrong, client));
        Assert.Contains("has no device cuda:7", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Other_weights_of_the_same_name_and_layout_are_refused_and_a_renamed_copy_runs()
    {
        var client = _cluster!.Nodes[0];
        var hosts = await ClusterPipelinePlanner.FindHostsAsync(client, 3, Timeout);
        var folder = Directory.CreateTempSubdirectory("di-identity-").FullName;
        try
        {
            var changed = ModelIdentity.Of(Fixtures.CopyModel(Fixtures.Path("lm"), Path.Combine(folder, "lm"), changeOneWeight: true), null);
            var renamed = ModelIdentity.Of(Fixtures.CopyModel(Fixtures.Path("lm"), Path.Combine(folder, "lm-renamed"), changeOneWeight: false), null);

            // The planner refuses with one line; a stage host asked directly (a planner of its own) refuses too.
            var refused = Assert.Throws<InvalidInputException>(() => ClusterPipelinePlanner.Plan(hosts, changed, InferenceTask.Logits, "auto", Precision.Fp32));
            Assert.StartsWith($"node {hosts[0].Node} serves model {Model} (logits), not {changed} (logits): ", refused.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', refused.Message);
            var planned = ClusterPipelinePlanner.Plan(hosts, Model, InferenceTask.Logits, "auto", Precision.Fp32);
            var other = planned.Placements.Select(p => (StagePlacement)(((HostedStage)p) with { Spec = ((HostedStage)p).Spec with { Model = changed } })).ToList();
            var error = await Assert.ThrowsAsync<InvalidInputException>(() => PipelineRuntime.StartAsync(other, client));
            Assert.Contains($"this node serves {Model} (logits), not {changed} (logits)", error.Message, StringComparison.Ordinal);

            await using var pipeline = await ClusterPipeline.StartAsync(client, renamed, InferenceTask.Logits, "auto", Precision.Fp32, nodes: 3);
            Assert.True(Fixtures.MaxAbsDiff((Tensor)(await pipeline.RunAsync(Input(), numChunks: 2)).Output, Fixtures.Expected("lm_logits")) <= 1e-4);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_node_that_leaves_fails_the_pipeline_instead_of_hanging_it()
    {
        var client = _cluster!.Nodes[0];
        var planned = ClusterPipelinePlanner.Plan(await ClusterPipelinePlanner.FindHostsAsync(client, 3, Timeout), Model, InferenceTask.Logits, "auto", Precision.Fp32);
        await using var pipeline = await PipelineRuntime.StartAsync(planned.Placements, client);
        var last = _cluster.Nodes.Single(n => Akka.Cluster.Cluster.Get(n).SelfAddress == planned.Hosts[2].Node);
        Assert.NotSame(client, last);
        var lastStage = pipeline.Stages[2];
        var watcher = CreateTestProbe(client);
        await watcher.WatchAsync(lastStage);
        await Akka.Cluster.Cluster.Get(last).LeaveAsync();
        await watcher.ExpectTerminatedAsync(lastStage, TimeSpan.FromSeconds(60));

        // The pipeline's coordinator learns of it too (its own watch, a message of its own): from then on a call fails.
        Exception? error = null;
        await AwaitAssertAsync(
            async () =>
            {
                error = await Record.ExceptionAsync(() => pipeline.RunAsync(Input(), numChunks: 2).WaitAsync(TimeSpan.FromSeconds(60)));
                Assert.True(error is not null, "the pipeline kept running without its last stage's node");
            },
            TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(100));

        _output.WriteLine(error!.Message);
        Assert.IsType<JobFailedException>(error);

        // Which the coordinator hears of first is a race: the stage's termination, or its leaving node going unreachable
        // as it shuts down (seen once in CI under load). Either breaks the pipeline, naming the last stage.
        Assert.Matches(@"^pipeline stage 2 (stopped\b|is unreachable \(node )", error.Message);
    }

    [Fact]
    public async Task A_cluster_pipeline_plans_again_over_the_nodes_left_when_a_stage_node_leaves()
    {
        var client = _cluster!.Nodes[0];
        var log = new List<string>();
        await using var pipeline = await ClusterPipeline.StartAsync(client, Model, InferenceTask.Logits, "auto", Precision.Fp32, nodes: 3, log.Add);
        Assert.Equal(3, pipeline.Stages.Select(s => s.Path.Address).Distinct().Count());
        Assert.True(Fixtures.MaxAbsDiff((Tensor)(await pipeline.RunAsync(Input(), numChunks: 2)).Output, Fixtures.Expected("lm_logits")) <= 1e-4);

        var last = _cluster.Nodes.Single(n => Akka.Cluster.Cluster.Get(n).SelfAddress == pipeline.Plan.Hosts[2].Node);
        Assert.NotSame(client, last);
        var lastStage = pipeline.Stages[2];
        var watcher = CreateTestProbe(client);
        await watcher.WatchAsync(lastStage);
        await Akka.Cluster.Cluster.Get(last).LeaveAsync();
        await watcher.ExpectTerminatedAsync(lastStage, TimeSpan.FromSeconds(60));

        // The next call loses its last stage, and runs again on a plan over the two nodes left; every call gives the logits.
        var diffs = new List<double>();
        await AwaitAssertAsync(
            async () =>
            {
                var completed = await pipeline.RunAsync(Input(), numChunks: 2).WaitAsync(TimeSpan.FromSeconds(90));
                diffs.Add(Fixtures.MaxAbsDiff((Tensor)completed.Output, Fixtures.Expected("lm_logits")));
                Assert.True(pipeline.Replans > 0, "the pipeline never noticed its lost stage");
            },
            TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(100));

        Assert.All(diffs, diff => Assert.True(diff <= 1e-4, $"{diff}"));

        _output.WriteLine(string.Join(Environment.NewLine, log));
        Assert.Equal(2, pipeline.Stages.Count);
        Assert.DoesNotContain(pipeline.Stages, s => s.Path.Address == Akka.Cluster.Cluster.Get(last).SelfAddress);
        Assert.Contains(log, l => l.Contains("planning again", StringComparison.Ordinal));
        var again = await pipeline.RunAsync(Input(), numChunks: 3);
        Assert.True(Fixtures.MaxAbsDiff((Tensor)again.Output, Fixtures.Expected("lm_logits")) <= 1e-4);
    }

    [Fact]
    public async Task Two_pipelines_share_one_client_actor_system()
    {
        var client = _cluster!.Nodes[0];
        var planned = ClusterPipelinePlanner.Plan(await ClusterPipelinePlanner.FindHostsAsync(client, 3, Timeout), Model, InferenceTask.Logits, "auto", Precision.Fp32);
        await using var first = await PipelineRuntime.StartAsync(planned.Placements, client);
        await using var second = await PipelineRuntime.StartAsync(planned.Placements, client);
        var outputs = await Task.WhenAll(first.RunAsync(Input(), numChunks: 2), second.RunAsync(Input(), numChunks: 4));
        Assert.All(outputs, o => Assert.True(Fixtures.MaxAbsDiff((Tensor)o.Output, Fixtures.Expected("lm_logits")) <= 1e-4));
    }

    [Fact]
    public async Task Named_split_points_use_as_many_devices_as_they_make_stages()
    {
        var client = _cluster!.Nodes[0];
        var hosts = await ClusterPipelinePlanner.FindHostsAsync(client, 3, Timeout);
        var planned = ClusterPipelinePlanner.Plan(hosts, Model, InferenceTask.Logits, "h.1", Precision.Fp32);
        Assert.Equal([hosts[0].Node, hosts[1].Node], planned.Hosts.Select(h => h.Node));
        await using var pipeline = await PipelineRuntime.StartAsync(planned.Placements, client);
        Assert.True(Fixtures.MaxAbsDiff((Tensor)(await pipeline.RunAsync(Input(), numChunks: 2)).Output, Fixtures.Expected("lm_logits")) <= 1e-4);

        var error = Assert.Throws<InvalidInputException>(() => ClusterPipelinePlanner.Plan(hosts, Model, InferenceTask.Logits, "h.0,h.1,ln_f+head", Precision.Fp32));
        Assert.Contains("make 4 stages, but the cluster's device nodes have 3 device(s)", error.Message, StringComparison.Ordinal);
    }
}
