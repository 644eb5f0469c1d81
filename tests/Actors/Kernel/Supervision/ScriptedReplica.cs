using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Supervision;

/// <summary>
/// A replica model double: results are the rows themselves (lists of ints), or twice the rows of a tensor (a new
/// tensor; a row's "value" is its first element), and a script may throw for a given call (counting every call of
/// every replica the factory built, from 1) or for given row values.
/// </summary>
internal sealed class ScriptedReplica : IReplicaModel
{
    private readonly ScriptedReplicaFactory _factory;

    public ScriptedReplica(ScriptedReplicaFactory factory) => _factory = factory;

    public string Description => "scripted";

    public ReplicaSpec? Spec => null;

    public object Run(object rows)
    {
        var call = Interlocked.Increment(ref _factory.Calls);
        if (rows is Tensor tensor)
        {
            using var first = tensor.select(1, 0).to(ScalarType.Int32);
            _factory.Throw?.Invoke(call, first.data<int>().ToArray());
            return tensor.mul(2);
        }

        var items = ((object[])rows).Cast<int>().ToArray();
        _factory.Throw?.Invoke(call, items);
        return items.Cast<object>().ToArray();
    }

    public void Dispose() => Interlocked.Increment(ref _factory.Disposed);
}

internal sealed class ScriptedReplicaFactory
{
    public int Loads;
    public int Calls;
    public int Disposed;

    /// <summary>Called with the call number (from 1) and the rows, before the rows are returned: may throw.</summary>
    public Action<int, int[]>? Throw { get; init; }

    public ReplicaModelFactory Factory => _ =>
    {
        Interlocked.Increment(ref Loads);
        return new ScriptedReplica(this);
    };
}
