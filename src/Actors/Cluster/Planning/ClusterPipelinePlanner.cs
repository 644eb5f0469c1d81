using System.Text;
using Akka.Actor;
using Akka.Cluster;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Cluster.Planning;

/// <summary>A node's stage host, what it offers, and where it is.</summary>
public sealed record StageHostOnNode(Address Node, IActorRef Host, StageHostInfo Info);

/// <summary>A pipeline cut over the devices of several nodes: the plan, and where each stage is built.</summary>
public sealed record ClusterPipelinePlan(PipelinePlan Plan, IReadOnlyList<StageHostOnNode> Hosts, IReadOnlyList<StagePlacement> Placements)
{
    /// <summary>The plan as a table, each stage with its node.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        var lines = Plan.Describe().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        for (var s = 0; s < lines.Length; s++)
        {
            var free = FreeBytes(s);
            text.AppendLine($"{lines[s]} @ {Hosts[s].Node}{(free >= 0 ? $" ({Models.Partitioning.MaxMemory.GiB(free)} free)" : string.Empty)}");
        }

        return text.ToString();
    }

    /// <summary>The free bytes stage <paramref name="stage"/>'s node reported for its device; -1 when unknown.</summary>
    public long FreeBytes(int stage)
    {
        var info = Hosts[stage].Info;
        var device = Plan.Stages[stage].Device.ToString();
        var index = info.Devices.ToList().IndexOf(device);
        return info.FreeBytes is { } free && index >= 0 && index < free.Count ? free[index] : -1;
    }
}

/// <summary>
/// Plans pipelines across the cluster: finds the stage host of every Up node with the device role (oldest node
/// first), cuts the model they serve over all their devices in that order, and places each stage on its device's
/// node.
/// </summary>
public static class ClusterPipelinePlanner
{
    /// <summary>
    /// The stage hosts of the device nodes that are Up and reachable, once there are at least <paramref name="nodes"/>
    /// of them (any number from one when null) and each has loaded its model.
    /// </summary>
    public static async Task<IReadOnlyList<StageHostOnNode>> FindHostsAsync(ActorSystem system, int? nodes, TimeSpan timeout, CancellationToken cancellation = default)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var unreachable = cluster.State.Unreachable;
            var members = cluster.State.Members
                .Where(m => m.Status == MemberStatus.Up && m.HasRole(DeviceManager.Role) && !unreachable.Contains(m))
                .OrderBy(m => m, Member.AgeOrdering)
                .ToList();
            if (members.Count >= Math.Max(1, nodes ?? 1))
            {
                // A node that has just died may still be Up (its failure not yet detected): it does not answer, and is
                // left out rather than failing the plan; one still starting is asked again on the next round.
                var left = deadline - DateTime.UtcNow;
                var wait = left < TimeSpan.FromSeconds(10) ? left : TimeSpan.FromSeconds(10);
                var answers = await Task.WhenAll(members.Select(async member =>
                {
                    try
                    {
                        var host = await system.ActorSelection(new RootActorPath(member.Address) / "user" / StageHost.ActorName).ResolveOne(wait, cancellation);
                        return new StageHostOnNode(member.Address, host, await host.Ask<StageHostInfo>(GetStageHostInfo.Instance, left, cancellation));
                    }
                    catch (Exception e) when (e is ActorNotFoundException or AskTimeoutException && !cancellation.IsCancellationRequested)
                    {
                        return null;
                    }
                }));
                var found = answers.OfType<StageHostOnNode>().ToList();
                if (found.Count >= Math.Max(1, nodes ?? 1))
                {
                    return found;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new JobFailedException($"{members.Count} device node(s) are Up, {nodes} needed, after {timeout.TotalSeconds:F0} s");
            }

            await Task.Delay(200, cancellation);
        }
    }

    /// <summary>
    /// One stage per device of every host, in host order, cut at <paramref name="splitPoints"/>: <c>auto</c> or
    /// <c>compute</c> use every device; named split points use as many devices as they make stages, the first ones.
    /// </summary>
    // Refused before any stage loads: the weights a node's stages would hold on a device it reports too little free memory for.
    private static void CheckFreeMemory(ClusterPipelinePlan planned, IReadOnlyList<Models.Staging.StagedLayerInfo> layers, Precision dtype)
    {
        using var probe = TorchSharp.torch.empty([0], dtype.ToScalarType());
        var size = probe.ElementSize;
        var groups = planned.Plan.Stages.GroupBy(stage => (planned.Hosts[stage.Stage].Node, Device: stage.Device.ToString()));
        foreach (var group in groups)
        {
            var free = planned.FreeBytes(group.First().Stage);
            var needed = group.Sum(stage => layers.Skip(stage.FirstLayer).Take(stage.LayerCount).Sum(l => l.ParameterCount)) * size;
            if (free >= 0 && needed > free)
            {
                throw new InvalidInputException(
                    $"stage(s) {string.Join(", ", group.Select(s => s.Stage))} on {group.Key.Node} {group.Key.Device} need {Models.Partitioning.MaxMemory.GiB(needed)} of weights, the node reports {Models.Partitioning.MaxMemory.GiB(free)} free");
            }
        }
    }

    /// <param name="model">The model the job is for: every host must serve these weights.</param>
    /// <param name="task">The task the job runs: every host must have staged its model for it.</param>
    /// <exception cref="InvalidInputException">No host, a host serving other weights or another task, a plan that does not fit.</exception>
    public static ClusterPipelinePlan Plan(IReadOnlyList<StageHostOnNode> hosts, ModelIdentity model, InferenceTask task, string splitPoints, Precision dtype)
    {
        if (hosts.Count == 0)
        {
            throw new InvalidInputException("no node with the device role hosts pipeline stages");
        }

        var other = hosts.FirstOrDefault(h => !h.Info.Model.Equals(model) || h.Info.Task != task);
        if (other is not null)
        {
            throw new InvalidInputException(
                $"node {other.Node} serves model {other.Info.Model} ({other.Info.Task.Name()}), not {model} ({task.Name()}): run the job for the model the nodes serve, or start every node with the job's --model and --task");
        }

        // Planned at the sizes the stages will load: the run's dtype, whatever the hosts' views were described in.
        var layers = Models.Staging.StagedLayerInfo.InDtype(hosts[0].Info.Layers, dtype.ToScalarType());
        var slots = hosts.SelectMany(host => host.Info.Devices.Select(device => (Host: host, Device: device))).ToList();
        if (Partitioner.NamedStageCount(splitPoints) is { } stages)
        {
            if (stages > slots.Count)
            {
                throw new InvalidInputException($"split points {splitPoints} make {stages} stages, but the cluster's device nodes have {slots.Count} device(s)");
            }

            slots = slots.Take(stages).ToList();
        }

        var plan = Partitioner.Plan(layers, slots.Select(s => DeviceName.Parse(s.Device)).ToList(), splitPoints);
        var placements = plan.Stages.Select(stage => (StagePlacement)new HostedStage(
            slots[stage.Stage].Host.Host,
            new StageSpec(stage.Stage, stage.FirstLayer, stage.LayerCount, slots[stage.Stage].Device, dtype, stage.Stage == plan.Stages.Count - 1, model, task))).ToList();
        var planned = new ClusterPipelinePlan(plan, plan.Stages.Select(stage => slots[stage.Stage].Host).ToList(), placements);
        CheckFreeMemory(planned, layers, dtype);
        return planned;
    }
}
