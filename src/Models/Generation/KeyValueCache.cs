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
    private readonly int _firstLayer;

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
        Batch = batch;
    }

    private KeyValueCache(Tensor[] keys, Tensor[] values, int firstLayer)
    {
        _firstLayer = firstLayer;
        _keys = keys;
        _values = values;
        Capacity = keys[0].shape[2];
        Batch = keys[0].shape[0];
    }

    /// <summary>
    /// A cache over buffers someone else keeps (a paged store's workspace, reused step after step): one key and one value
    /// tensor per layer, [batch, heads, capacity, head size]. The cache owns these tensor handles (pass views; disposing
    /// a view leaves its storage to the tensor it views).
    /// </summary>
    public static KeyValueCache Over(Tensor[] keys, Tensor[] values) => new(keys, values, 0);

    /// <summary>
    /// <see cref="Over(Tensor[], Tensor[])"/> for the attention layers [<paramref name="firstLayer"/>,
    /// <paramref name="firstLayer"/> + keys.Length) only, addressed by their index in the whole model (a pipeline stage's).
    /// </summary>
    public static KeyValueCache Over(Tensor[] keys, Tensor[] values, int firstLayer) => new(keys, values, firstLayer);

    /// <summary>
    /// A cache of the attention layers [<paramref name="firstLayer"/>, <paramref name="firstLayer"/> +
    /// <paramref name="layers"/>) only, addressed by their index in the whole model: what one pipeline stage holds.
    /// </summary>
    /// <param name="firstLayer">The model index of the first layer held.</param>
    /// <param name="layers">Layers held.</param>
    /// <param name="batch">Rows.</param>
    /// <param name="heads">Key/value heads.</param>
    /// <param name="capacity">Positions per row at most.</param>
    /// <param name="headSize">Width of one head.</param>
    /// <param name="device">Where the cache lives.</param>
    /// <param name="dtype">The layers' dtype.</param>
    public KeyValueCache(int firstLayer, int layers, long batch, int heads, long capacity, long headSize, Device device, ScalarType dtype)
        : this(layers, batch, heads, capacity, headSize, device, dtype)
    {
        _firstLayer = firstLayer;
    }

    /// <summary>Rows held.</summary>
    public long Batch { get; private set; }

    /// <summary>Bytes of keys and values allocated.</summary>
    public long AllocatedBytes => _keys.Concat(_values).Sum(t => t.NumberOfElements * t.ElementSize);

    /// <summary>
    /// Keeps only the rows <paramref name="rows"/> (indices into the current rows, in their new order) and frees the
    /// others: rows that finished generating leave the batch.
    /// </summary>
    /// <param name="rows">[B'] int64 indices, on any device.</param>
    public void KeepRows(Tensor rows)
    {
        using var index = rows.to(ScalarType.Int64).to(_keys[0].device);
        for (var i = 0; i < _keys.Length; i++)
        {
            var keys = _keys[i].index_select(0, index).DetachFromDisposeScope();
            var values = _values[i].index_select(0, index).DetachFromDisposeScope();
            _keys[i].Dispose();
            _values[i].Dispose();
            (_keys[i], _values[i]) = (keys, values);
        }

        Batch = index.shape[0];
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

        layer -= _firstLayer;
        _keys[layer].narrow(2, Length, steps).copy_(keys);
        _values[layer].narrow(2, Length, steps).copy_(values);
        return (_keys[layer].narrow(2, 0, Length + steps), _values[layer].narrow(2, 0, Length + steps));
    }

    /// <summary>Attention layers held.</summary>
    public int Layers => _keys.Length;

    /// <summary>
    /// The whole key and value buffers of the <paramref name="index"/>-th layer held ([batch, heads, capacity, head size],
    /// owned by this cache): a paged store fills the past positions before a step (then <see cref="Advance"/>s) and reads
    /// the step's new positions back after it.
    /// </summary>
    public (Tensor Keys, Tensor Values) Buffers(int index) => (_keys[index], _values[index]);

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
