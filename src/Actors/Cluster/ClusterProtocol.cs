using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Cluster;

/// <summary>
/// The cluster's own wire format: a node's devices (<see cref="GetLocalDevices"/>), job status queries through the job
/// region, and stage hosts (what they serve, stages to build). The features' messages are in their own protocols.
/// </summary>
public sealed class ClusterProtocol : WireProtocol
{
    public override void Register(WireRegistry registry) => registry
        .Add("get-local-devices", GetLocalDevices.Instance)
        .Add<GetJobStatus>("get-job-status", (w, m) => w.String(m.JobId), r => new GetJobStatus(r.String()))
        .Add<JobStatus>("job-status", (w, m) => { w.String(m.JobId); w.Enum(m.State); w.Int(m.RowsDone); w.Int(m.RowsTotal); w.OptionalString(m.Reason); }, r => new JobStatus(r.String(), r.Enum<JobState>(), r.Int(), r.Int(), r.OptionalString()))
        .Add("get-stage-host-info", GetStageHostInfo.Instance)
        .Add<StageHostInfo>("stage-host-info", WriteStageHostInfo, ReadStageHostInfo)
        .Add<HostStage>("host-stage", (w, m) => { Spec(w, m.Spec); w.Ref(m.Coordinator); }, r => new HostStage(Spec(r), r.Ref()));

    private static void Spec(WireWriter writer, StageSpec spec)
    {
        writer.Int(spec.Stage);
        writer.Int(spec.FirstLayer);
        writer.Int(spec.LayerCount);
        writer.String(spec.Device);
        writer.Enum(spec.DType);
        writer.Bool(spec.Last);
        ReplicaProtocol.Identity(writer, spec.Model);
        writer.Enum(spec.Task);
    }

    private static StageSpec Spec(WireReader reader) =>
        new(reader.Int(), reader.Int(), reader.Int(), reader.String(), reader.Enum<Precision>(), reader.Bool(), ReplicaProtocol.Identity(reader), reader.Enum<InferenceTask>());

    private static void WriteStageHostInfo(WireWriter writer, StageHostInfo info)
    {
        writer.Many(info.Devices, (w, device) => w.String(device));
        ReplicaProtocol.Identity(writer, info.Model);
        writer.Enum(info.Task);
        writer.Many(info.Layers, (w, layer) => { w.String(layer.Name); w.Long(layer.ParameterCount); w.Long(layer.ParameterBytes); w.Long(layer.FlopsPerToken); });
        writer.Many(info.FreeBytes ?? [], (w, bytes) => w.Long(bytes));
    }

    private static StageHostInfo ReadStageHostInfo(WireReader reader)
    {
        var devices = reader.Many(r => r.String());
        var model = ReplicaProtocol.Identity(reader);
        var task = reader.Enum<InferenceTask>();
        var layers = reader.Many(r => new StagedLayerInfo(r.String(), r.Long(), r.Long(), r.Long()));
        var free = reader.Many(r => r.Long());
        return new StageHostInfo(devices, model, task, layers, free.Count == 0 ? null : free);
    }
}
