using Akka.Actor;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>Nodes say how much memory their devices have free; a plan whose stages a node cannot hold is refused before any stage loads.</summary>
public sealed class ClusterMemoryPlanTests
{
    private static readonly StagedLayerInfo[] Layers = Enumerable.Range(0, 4).Select(i => new StagedLayerInfo($"l{i}", 1_000_000, 4_000_000)).ToArray();

    private static readonly ModelIdentity Model = ModelIdentity.BuiltIn("m", 0);

    private static StageHostOnNode Host(int port, long free) =>
        new(new Address("akka.tcp", "distributed-inference", "127.0.0.1", port), ActorRefs.Nobody, new StageHostInfo(["cpu"], Model, InferenceTask.Logits, Layers, [free]));

    [Fact]
    public void The_plan_shows_each_nodes_free_memory()
    {
        var planned = ClusterPipelinePlanner.Plan([Host(1, 3L << 30), Host(2, 5L << 30)], Model, InferenceTask.Logits, "auto", Precision.Fp32);
        var text = planned.Describe();
        Assert.Contains("127.0.0.1:1 (3.0 GiB free)", text, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:2 (5.0 GiB free)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_with_too_little_free_memory_is_refused_before_loading()
    {
        // 2 layers of 1M float32 parameters = 8 MB per stage; the second node has 5 MB free.
        var e = Assert.Throws<InvalidInputException>(() => ClusterPipelinePlanner.Plan([Host(1, 3L << 30), Host(2, 5_000_000)], Model, InferenceTask.Logits, "auto", Precision.Fp32));
        Assert.Contains("stage(s) 1 on akka.tcp://distributed-inference@127.0.0.1:2 cpu need 0.0 GiB of weights, the node reports 0.0 GiB free", e.Message, StringComparison.Ordinal);
        // In bf16 the same stages fit in 4 MB each.
        Assert.Equal(2, ClusterPipelinePlanner.Plan([Host(1, 3L << 30), Host(2, 5_000_000)], Model, InferenceTask.Logits, "auto", Precision.Bf16).Plan.Stages.Count);
    }

    [Fact]
    public void A_cpu_reports_its_available_memory()
    {
        Assert.InRange(DeviceMemory.FreeBytes(DeviceName.Cpu), 1L << 20, long.MaxValue);
        Assert.Equal(-1, DeviceMemory.FreeBytes(DeviceName.Parse("cuda:0")));
    }
}
