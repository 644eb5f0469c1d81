using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// Keys and values of every attention layer for the positions seen so far, preallocated for the longest sequence
/// so that a decoding step writes one slice instead of concatenating. Shared by every decoder family (GPT-2, Llama);
/// it owns its tensors ([batch, heads, capacity, head size] per layer, keys after RoPE for Llama) until disposed.
/// </summary>
public sealed class KeyValueCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

    /// <param name="layers">Attention layers.</param>
    /// <param name="batch">Rows.</param>
    /// <param name="heads">Key/value heads (fewer than query heads with grouped-query attention).</param>
    /// <param name="capacity">Positions per row at most: prompt + new tokens.</param>
    /// <param name="headSize">Width of one head.</param>
    /// <param name="device">Where the cache lives: the model's device.</param>
    /// <param name="dtype">The model's dtype.</param>
    public KeyValueCache(int layers, long batch, int heads, long capacity, long headSize, Device device, ScalarType dtype)
    {
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (var i = 0; i < layers; i++)
        {
            _keys[i] = empty([batch, heads, capacity, headSize], dtype, device).DetachFromDisposeScope();
            _values[i] = empty([batch, heads, capacity, headSize], dtype, device).DetachFromDisposeScope();
        }

        Capacity = capacity;
    }

    public long Capacity { get; }

    /// <summary>Positions already stored; new keys of the current step go right after them.</summary>
    public long Length { get; private set; }

    /// <summary>Stores the step's keys and values of one layer and returns everything stored for it so far.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor keys, Tensor values)
    {
        var steps = keys.shape[2];
        if (Length + steps > Capacity)
        {
            throw new InvalidOperationException($"key/value cache holds {Capacity} positions; {Length + steps} needed");
        }

        _keys[layer].narrow(2, Length, steps).copy_(keys);
        _values[layer].narrow(2, Length, steps).copy_(values);
        return (_keys[layer].narrow(2, 0, Length + steps), _values[layer].narrow(2, 0, Length + steps));
    }

    /// <summary>Called once every layer has appended the step's positions.</summary>
    public void Advance(long steps) => Length += steps;

    public void Dispose()
    {
        foreach (var tensor in _keys.Concat(_values))
        {
            tensor.Dispose();
        }
    }
}
