using DistributedInference.Models.Generation;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// The tensors behind a <see cref="KvBlockPool"/>: per attention layer, keys and values of every block's positions
/// ([blocks x block size, kv heads, head size] each, the model's dtype, on its device; keys after RoPE for the Llama
/// family). A step reads a sequence's past through its block table and writes its new positions back; attention itself
/// runs on a contiguous per-step view (<see cref="Gather"/>), so every decoder family's attention is used unchanged.
/// On the CPU the gather is one <c>index_select</c> per layer and tensor; its cost is measured in docs/benchmarks.md.
/// A store may hold a range of the model's layers only (a pipeline stage's); where a pass reads and writes is a
/// <see cref="PagedKvPlan"/>, computed once from the block tables.
/// Owns its tensors until disposed.
/// </summary>
public sealed class PagedKvStore : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;
    private readonly Tensor[] _workKeys;
    private readonly Tensor[] _workValues;
    private readonly Device _device;
    private readonly int _firstLayer;

    /// <param name="model">The decoder whose keys and values are stored (its layers, heads and dtype).</param>
    /// <param name="blocks">Blocks in the pool.</param>
    /// <param name="blockSize">Positions per block.</param>
    /// <param name="device">The model's device.</param>
    public PagedKvStore(ICausalLanguageModel model, int blocks, int blockSize, Device device)
        : this(Slots(model, device), blocks, blockSize, device)
    {
    }

    /// <summary>A store for some attention layers only (a pipeline stage's), addressed by their index in the whole model.</summary>
    /// <param name="slots">The layers held, consecutive and in order (the first one's index is the caches' first layer).</param>
    /// <param name="blocks">Blocks in the pool.</param>
    /// <param name="blockSize">Positions per block.</param>
    /// <param name="device">The layers' device.</param>
    /// <exception cref="ArgumentException">No slot.</exception>
    public PagedKvStore(IReadOnlyList<CacheSlot> slots, int blocks, int blockSize, Device device)
    {
        if (slots.Count == 0)
        {
            throw new ArgumentException("a paged store needs at least one attention layer", nameof(slots));
        }

        _device = device;
        _firstLayer = slots[0].Layer;
        _keys = new Tensor[slots.Count];
        _values = new Tensor[slots.Count];
        _workKeys = new Tensor[slots.Count];
        _workValues = new Tensor[slots.Count];
        for (var layer = 0; layer < slots.Count; layer++)
        {
            var slot = slots[layer];
            // A padding column of a step reads slot 0 (masked, so weighed by exactly 0), and 0 x NaN from uninitialised
            // memory would be NaN while block 0 holds nothing yet: slot 0 starts at zero. The rest stays untouched until
            // written (zeroing all of it would make the whole pool resident at once).
            _keys[layer] = empty([(long)blocks * blockSize, slot.Heads, slot.HeadSize], slot.Dtype, device).DetachFromDisposeScope();
            _values[layer] = empty([(long)blocks * blockSize, slot.Heads, slot.HeadSize], slot.Dtype, device).DetachFromDisposeScope();
            using (var first = _keys[layer].narrow(0, 0, 1))
            {
                first.zero_();
            }

            using (var first = _values[layer].narrow(0, 0, 1))
            {
                first.zero_();
            }
            _workKeys[layer] = empty([1, slot.Heads, 1, slot.HeadSize], slot.Dtype, device).DetachFromDisposeScope();
            _workValues[layer] = empty([1, slot.Heads, 1, slot.HeadSize], slot.Dtype, device).DetachFromDisposeScope();
        }

        BlockSize = blockSize;
        Blocks = blocks;
    }

    public int BlockSize { get; }

    /// <summary>Blocks in the pool.</summary>
    public int Blocks { get; }

    /// <summary>Bytes of keys and values one position takes over all layers: what sizes the pool.</summary>
    public static long BytesPerPosition(ICausalLanguageModel model, Device device)
    {
        using var probe = model.CreateCache(1, 1, device);
        return probe.AllocatedBytes;
    }

    /// <summary>The cache slots of every attention layer of <paramref name="model"/>.</summary>
    public static IReadOnlyList<CacheSlot> Slots(ICausalLanguageModel model, Device device)
    {
        using var probe = model.CreateCache(1, 1, device);
        return Enumerable.Range(0, probe.Layers).Select(layer =>
        {
            var (keys, _) = probe.Buffers(layer);
            return new CacheSlot(layer, (int)keys.shape[1], keys.shape[3], keys.dtype);
        }).ToList();
    }

    /// <summary>
    /// A cache for one forward pass of <paramref name="rows"/> rows (a view of this store's workspace: valid until the next call) that each add <paramref name="newTokens"/> positions,
    /// as <see cref="PagedKvPlan"/> lays them out.
    /// </summary>
    /// <returns>The cache (its length P; the caller disposes it), the mask ([rows, P + newTokens] int64) and the new positions' slot numbers
    /// ([rows, newTokens] int64, for <see cref="Scatter"/>); the tensors are in the caller's dispose scope.</returns>
    public (KeyValueCache Cache, Tensor Mask, Tensor NewSlots) Gather(IReadOnlyList<(IReadOnlyList<int> Blocks, int Past)> rows, int newTokens)
    {
        var plan = PagedKvPlan.Of(rows, newTokens, BlockSize);
        using var pastSlots = plan.PastSlotsTensor(_device);
        return (Gather(pastSlots, newTokens), plan.MaskTensor(_device), plan.NewSlotsTensor(_device));
    }

    /// <summary>
    /// A cache for one forward pass (a view of this store's workspace: valid until the next call) holding each row's past
    /// from <paramref name="pastSlots"/> (a <see cref="PagedKvPlan"/>'s, [rows, P] int64 on any device), with room for
    /// <paramref name="newTokens"/> more positions. The caller disposes the cache (its length P).
    /// </summary>
    public KeyValueCache Gather(Tensor pastSlots, int newTokens)
    {
        var (rows, longest) = ((int)pastSlots.shape[0], (int)pastSlots.shape[1]);
        var cache = Workspace(rows, longest + newTokens);
        if (longest > 0)
        {
            using var index = pastSlots.reshape(-1).to(_device);
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
                using var rowsFirst = past.view(rows, longest, past.shape[1], past.shape[2]);
                using var target = buffer.narrow(2, 0, longest);
                target.copy_(rowsFirst.permute(0, 2, 1, 3));
            }
        }

        return cache;
    }

    /// <summary>Writes the positions a forward pass added to <paramref name="cache"/> (columns [P, P + newTokens)) into their slots.</summary>
    /// <param name="cache">The cache <see cref="Gather"/> returned, after the pass.</param>
    /// <param name="newSlots">The plan's new slots ([rows, newTokens] int64, on any device).</param>
    /// <param name="newTokens">Positions each row added.</param>
    public void Scatter(KeyValueCache cache, Tensor newSlots, int newTokens)
    {
        var past = cache.Length - newTokens;
        using var index = newSlots.reshape(-1).to(_device);
        for (var layer = 0; layer < _keys.Length; layer++)
        {
            var (keys, values) = cache.Buffers(layer);
            Write(_keys[layer], keys);
            Write(_values[layer], values);
        }

        void Write(Tensor pool, Tensor buffer)
        {
            using var added = buffer.narrow(2, past, newTokens).permute(0, 2, 1, 3).reshape(-1, pool.shape[1], pool.shape[2]);
            pool.index_copy_(0, index, added);
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
            _workValues.Select(v => v.narrow(0, 0, rows).DetachFromDisposeScope()).ToArray(),
            _firstLayer);
    }
}
