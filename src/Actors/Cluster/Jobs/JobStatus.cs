namespace DistributedInference.Actors.Cluster.Jobs;

/// <summary>Asks a job's coordinator (through the job shard region, from any node) how its job stands: answered with <see cref="JobStatus"/>.</summary>
public sealed record GetJobStatus(string JobId) : Kernel.Wire.IWireMessage;

/// <summary>Where a job stands: <see cref="JobState"/>, rows done of rows in all, and why it failed.</summary>
public sealed record JobStatus(string JobId, JobState State, int RowsDone, int RowsTotal, string? Reason = null) : Kernel.Wire.IWireMessage;

public enum JobState
{
    /// <summary>No job with this id was submitted (or it finished long enough ago to be forgotten).</summary>
    Unknown = 0,
    Submitted = 1,
    Running = 2,
    Completed = 3,
    Failed = 4,
}
