namespace DistributedInference.Models.Tasks;

/// <summary>
/// A whole model on one device, as replica mode runs it: takes a slice of a job's input rows (a tensor, a list, or
/// a dictionary of them, as the job was given) and returns one result row per input row, copied off the device.
/// Runs on its device actor's thread only.
/// </summary>
public interface IReplicaModel : IDisposable
{
    /// <summary>A short description for status reports (model, task, device, dtype).</summary>
    string Description { get; }

    object Run(object rows);
}
