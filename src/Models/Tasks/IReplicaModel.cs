namespace DistributedInference.Models.Tasks;

/// <summary>
/// A whole model on one device, as replica mode runs it: takes a slice of a job's input rows (a tensor, a list, or
/// a dictionary of them, as the job was given) and returns one result row per input row, copied off the device.
/// Runs on its device actor's thread only.
/// Ownership (the runtime's one rule: the sender lets go, the receiver disposes, whatever is kept is cloned):
/// <see cref="Run"/> may read its rows but does not own them (the device actor disposes them after the call, except
/// tensors the model returned as they are); what it returns belongs to the caller, so it must not be disposed by the
/// model afterwards, nor be a tensor the model keeps. It must be a tensor (rows along dim 0), a list of row values
/// (strings, numbers, booleans, null, tensors, <see cref="Completion"/>s, lists or dictionaries of them) or a
/// string-keyed dictionary of those: the device actor wraps it as the message payload and fails the batch as an input
/// error otherwise.
/// </summary>
public interface IReplicaModel : IDisposable
{
    /// <summary>A short description for status reports and logs (model, task, dtype, device).</summary>
    string Description { get; }

    /// <summary>
    /// What this replica serves (model, task, precision, decoding), as jobs for a named model check it; null for a model
    /// that is not one of a <see cref="Auto.IModelSource"/>'s (a module of the caller's own), which only jobs naming no model
    /// use.
    /// </summary>
    ReplicaSpec? Spec { get; }

    /// <summary>One result row per row of <paramref name="rows"/>, copied off the device; the caller owns the result.</summary>
    object Run(object rows);
}
