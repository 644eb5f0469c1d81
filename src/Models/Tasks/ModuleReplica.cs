using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// Any TorchSharp module as a replica: a factory builds it on the device, <c>toTensor</c> turns input rows into its
/// input, its output tensor (one row per input row) comes back on the CPU, or through <c>fromTensor</c>.
/// Ownership: <c>toTensor</c>'s result and every tensor the forward pass makes are disposed by the replica, except
/// the CPU output handed to <c>fromTensor</c>; <c>fromTensor</c> runs outside any dispose scope, so what it computes
/// is its own to return, and the output it was given is disposed after it returns unless what it returned holds that
/// tensor (itself, or inside a list or dictionary it returned).
/// </summary>
public sealed class ModuleReplica : IReplicaModel
{
    private readonly nn.Module<Tensor, Tensor> _module;
    private readonly Device _device;
    private readonly Func<object, Tensor> _toTensor;
    private readonly Func<Tensor, object> _fromTensor;

    private ModuleReplica(string name, nn.Module<Tensor, Tensor> module, DeviceName device, Func<object, Tensor> toTensor, Func<Tensor, object> fromTensor)
    {
        _module = module;
        _device = device.ToTorch();
        _toTensor = toTensor;
        _fromTensor = fromTensor;
        Description = $"{name} on {device}";
    }

    public string Description { get; }

    /// <summary>None: a module of the caller's own serves only jobs that name no model.</summary>
    public ReplicaSpec? Spec => null;

    /// <param name="name">Shown in status reports.</param>
    /// <param name="build">Builds the module (weights included) on the given device.</param>
    /// <param name="toTensor">Input rows to the module's input; by default the rows must already be a tensor.</param>
    /// <param name="fromTensor">The module's output (on the CPU) to result rows; by default the tensor itself. Whatever it
    /// returns is the caller's; the output it was given is disposed afterwards unless what it returns holds it (as is, or
    /// in a list or dictionary).</param>
    public static ReplicaModelFactory Factory(
        string name,
        Func<Device, nn.Module<Tensor, Tensor>> build,
        Func<object, Tensor>? toTensor = null,
        Func<Tensor, object>? fromTensor = null) =>
        device =>
        {
            var torchDevice = device.ToTorch();
            var module = build(torchDevice);
            module.eval();
            return new ModuleReplica(
                name,
                module,
                device,
                toTensor ?? (rows => rows as Tensor ?? throw new InvalidInputException($"{name} takes a tensor, got {rows.GetType().Name}")),
                fromTensor ?? (output => output));
        };

    /// <summary>Runs the module over <paramref name="rows"/>: one result row per input row, on the CPU (the caller owns it).</summary>
    public object Run(object rows)
    {
        Tensor output;
        using (NewDisposeScope())
        using (no_grad())
        {
            output = _module.forward(_toTensor(rows).to(_device)).cpu().MoveToOuterDisposeScope();
        }

        // Outside the scope: what fromTensor computes must not be disposed with the scope's temporaries.
        try
        {
            using var noGrad = no_grad();
            var results = _fromTensor(output);
            if (!Holds(results, output))
            {
                output.Dispose();
            }

            return results;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    public void Dispose() => _module.Dispose();

    // Whether the value fromTensor returned holds the output tensor (by reference), itself or in a list or dictionary.
    private static bool Holds(object? value, Tensor output) => value switch
    {
        Tensor tensor => ReferenceEquals(tensor, output),
        string => false,
        System.Collections.IDictionary dictionary => dictionary.Values.Cast<object?>().Any(v => Holds(v, output)),
        IEnumerable<KeyValuePair<string, object>> pairs => pairs.Any(p => Holds(p.Value, output)),
        System.Collections.IEnumerable items => items.Cast<object?>().Any(v => Holds(v, output)),
        _ => false,
    };
}
