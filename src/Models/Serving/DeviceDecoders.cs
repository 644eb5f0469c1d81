using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Serving;

/// <summary>
/// The decoder of one model on each device of a node, built on first use and then shared: a node serving requests
/// holds one copy of the weights per device for both its device actors (<see cref="ServingReplica"/>, the many-row
/// jobs of <c>di batch --join</c>) and its continuous-batching engines (<c>di serve --join</c>). Each user holds the
/// module's monitor while it runs a forward, so the two take turns on the device (a replica batch runs to its end
/// before the engine's next iteration). Owns the modules: disposing disposes them.
/// </summary>
public sealed class DeviceDecoders : IDisposable
{
    private readonly IModelSource _source;
    private readonly ScalarType _dtype;
    private readonly Dictionary<DeviceName, nn.Module<Tensor, Tensor>> _modules = [];
    private bool _disposed;

    /// <param name="source">A decoder (<see cref="ServingReplica.Runs"/>).</param>
    /// <param name="dtype">The weights' dtype.</param>
    /// <exception cref="InvalidInputException">The model is not a decoder.</exception>
    public DeviceDecoders(IModelSource source, ScalarType dtype)
    {
        ServingReplica.RequireDecoder(source);
        _source = source;
        _dtype = dtype;
    }

    /// <summary>The model this holds.</summary>
    public IModelSource Source => _source;

    /// <summary>The weights' dtype.</summary>
    public ScalarType DType => _dtype;

    /// <summary>The decoder on <paramref name="device"/>, built (weights loaded) by the first caller; this object owns it.</summary>
    /// <exception cref="ObjectDisposedException">Disposed.</exception>
    public nn.Module<Tensor, Tensor> On(DeviceName device)
    {
        lock (_modules)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_modules.TryGetValue(device, out var module))
            {
                module = ServingReplica.CreateDecoder(_source, device.ToTorch(), _dtype);
                _modules[device] = module;
            }

            return module;
        }
    }

    /// <summary>The decoder on <paramref name="device"/> as the generation loop drives it (see <see cref="On"/>).</summary>
    public ICausalLanguageModel Model(DeviceName device) => (ICausalLanguageModel)On(device);

    public void Dispose()
    {
        lock (_modules)
        {
            _disposed = true;
            foreach (var module in _modules.Values)
            {
                module.Dispose();
            }

            _modules.Clear();
        }
    }
}
