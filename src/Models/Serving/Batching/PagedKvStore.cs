using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// The tensors behind a <see cref="KvBlockPool"/>: per attention layer, keys and values of every block's positions
/// ([blocks x block size, kv heads, head size] each, the model's dtype, on its device; keys after RoPE for the Llama
/// family). A step reads a sequence's past through its block table and writes its new positions back; attention itself
/// runs on a contiguous per-step view (<see cref="Gather"/>), so every decoder family's attention is used unchanged.
/// On the CPU the gather is one <c>index_select</c> per layer and tensor; its cost is measured in docs/benchmarks.md.
/// Owns its tensors until disposed.
/// </summary>
public sealed class PagedKvStore : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;
    private readonly Tensor[] _workKeys;
    private readonly Tensor[] _workValues;
    private readonly Device _device;

    /// <param name="model">The decoder whose keys and values are stored (its layers, heads and dtype).</param>
    /// <param name="blocks">Blocks in the pool.</param>
    /// <param name="blockSize">Positions per block.</param>
    /// <param name="device">The model's device.</param>
    public PagedKvStore(ICausalLanguageModel model, int blocks, int blockSize, Device device)
    {
        using var probe = model.CreateCache(1, 1, device);
        _device = device;
        _keys = new Tensor[probe.Layers];
        _values = new Tensor[probe.Layers];
        _workKeys = new Tensor[probe.Layers];
        _workValues = new Tensor[probe.Layers];
        for (var layer = 0; layer < probe.Layers; layer++)
        {
            var (keys, _) = probe.Buffers(layer);
            var (heads, headSize) = (keys.shape[1], keys.shape[3]);
            _keys[layer] = empty([(long)blocks * blockSize, heads, headSize], keys.dtype, device).DetachFromDisposeScope();
            _values[layer] = empty([(long)blocks * blockSize, heads, headSize], keys.dtype, device).DetachFromDisposeScope();
            _workKeys[layer] = empty([1, heads, 1, headSize], keys.dtype, device).DetachFromDisposeScope();
            _workValues[layer] = empty([1, heads, 1, headSize], keys.dtype, device).DetachFromDisposeScope();
        }

        BlockSize = blockSize;
    }

    public int BlockSize { get; }

    /// <summary>Bytes of keys and values one position takes over all layers: what sizes the pool.</summary>
    public static long BytesPerPosition(ICausalLanguageModel model, Device device)
    {
        using var probe = model.CreateCache(1, 1, device);
        return probe.AllocatedBytes;
    }

    /// <summary>
    /// A cache for one forward pass of <paramref name="rows"/> rows (a view of this store's workspace: valid until the next call) that each add <paramref name="newTokens"/> positions:
    /// each row's past positions [0, pastLengths[i]) copied from its blocks, right-aligned so that the new positions of
    /// every row share columns [P, P + newTokens) with P the longest past. Columns before a shorter row's past are
    /// padding: the returned mask ([rows, P + newTokens] int64, 1 = real) hides them.
    /// </summary>
    /// <returns>The cache (its length P; the caller disposes it), the mask and the new positions' slot numbers
    /// ([rows x newTokens] int64, for <see cref="Scatter"/>); the tensors are in the caller's dispose scope.</returns>
    public (KeyValueCache Cache, Tensor Mask, Tensor NewSlots) Gather(IReadOnlyList<(IReadOnlyList<int> Blocks, int Past)> rows, int newTokens)
    {
        var longest = rows.Max(r => r.Past);
        var cache = Workspace(rows.Count, longest + newTokens);
        var pastSlots = new long[rows.Count * longest];
        var newSlots = new long[rows.Count * newTokens];
        var mask = new long[rows.Count * (longest + newTokens)];
        for (var r = 0; r < rows.Count; r++)
        {
            var (blocks, past) = rows[r];
            var offset = longest - past;
            for (var q = 0; q < past; q++)
            {
                pastSlots[(r * longest) + offset + q] = Slot(blocks, q);
            }

            for (var t = 0; t < newTokens; t++)
            {
                newSlots[(r * newTokens) + t] = Slot(blocks, past + t);
            }

            Array.Fill(mask, 1L, (r * (longest + newTokens)) + offset, past + newTokens);
        }

        if (longest > 0)
        {
            using var index = tensor(pastSlots, device: _device);
            for (var layer = 0; layer < _keys.Length; layer++)
            {
                var (keys, values) = cache.Buffers(layer);
                Copy(_keys[layer], keys);
                Copy(_values[layer], values);
            }

            cache.Advance(longest);

            void Copy(Tensor pool, Tensor buffer)
            {
                using var past = pool.index_select(0, index);
                using var rowsFirst = past.view(rows.Count, longest, past.shape[1], past.shape[2]);
                using var target = buffer.narrow(2, 0, longest);
                target.copy_(rowsFirst.permute(0, 2, 1, 3));
            }
        }

        return (cache, tensor(mask, device: _device).view(rows.Count, longest + newTokens), tensor(newSlots, device: _device));
    }

    /// <summary>Writes the positions a forward pass added to <paramref name="cache"/> (columns [P, P + newTokens)) into their slots.</summary>
    /// <param name="cache">The cache <see cref="Gather"/> returned, after the pass.</param>
    /// <param name="newSlots">The slots <see cref="Gather"/> returned.</param>
    /// <param name="newTokens">Positions each row added.</param>
    public void Scatter(KeyValueCache cache, Tensor newSlots, int newTokens)
    {
        var past = cache.Length - newTokens;
        for (var layer = 0; layer < _keys.Length; layer++)
        {
            var (keys, values) = cache.Buffers(layer);
            Write(_keys[layer], keys);
            Write(_values[layer], values);
        }

        void Write(Tensor pool, Tensor buffer)
        {
            using var added = buffer.narrow(2, past, newTokens).permute(0, 2, 1, 3).reshape(-1, pool.shape[1], pool.shape[2]);
            pool.index_copy_(0, newSlots, added);
        }
    }

    public void Dispose()
    {
        foreach (var tensor in _keys.Concat(_values).Concat(_workKeys).Concat(_workValues))
        {
            tensor.Dispose();
        }
    }

    // The step's contiguous view, in buffers kept from step to step (a fresh allocation per step costs page faults on
    // the CPU); grown by half again when a step needs more rows or positions, never shrunk. Zeroed when allocated and then
    // only ever written with keys and values: a padding column a row does not use holds finite numbers, which its
    // masked attention weighs by exactly 0 (uninitialised memory could hold NaN, and 0 x NaN is NaN).
    private KeyValueCache Workspace(int rows, int positions)
    {
        var (haveRows, haveCapacity) = (_workKeys[0].shape[0], _workKeys[0].shape[2]);
        if (rows > haveRows || positions > haveCapacity)
        {
            var newRows = Math.Max(rows, haveRows + (haveRows / 2));
            var newCapacity = Math.Max(positions, haveCapacity + (haveCapacity / 2));
            for (var layer = 0; layer < _workKeys.Length; layer++)
            {
                var (heads, headSize, dtype) = (_workKeys[layer].shape[1], _workKeys[layer].shape[3], _workKeys[layer].dtype);
                _workKeys[layer].Dispose();
                _workValues[layer].Dispose();
                _workKeys[layer] = zeros([newRows, heads, newCapacity, headSize], dtype, _device).DetachFromDisposeScope();
                _workValues[layer] = zeros([newRows, heads, newCapacity, headSize], dtype, _device).DetachFromDisposeScope();
            }
        }

        return KeyValueCache.Over(
            _workKeys.Select(k => k.narrow(0, 0, rows).DetachFromDisposeScope()).ToArray(),
            _workValues.Select(v => v.narrow(0, 0, rows).DetachFromDisposeScope()).ToArray());
    }

    private long Slot(IReadOnlyList<int> blocks, int position) => ((long)blocks[position / BlockSize] * BlockSize) + (position % BlockSize);
}
