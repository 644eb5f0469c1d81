using DistributedInference.Models.Generation;
using DistributedInference.Models.Serving.Batching;
using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>
/// Runs <see cref="GenerationStep"/>s through one pipeline stage, keeping the key/value cache of the stage's own
/// attention layers for each sequence in flight (created on its prefill, narrowed when rows finish, freed on release).
/// A paged step (<see cref="GenerationStep.Paged"/>, continuous batching) runs over a <see cref="PagedKvStore"/> of the
/// stage's layers instead, one per pool: gather each row's past through the plan's slots, the layers, scatter the new
/// positions. Not thread-safe: one stage actor drives it.
/// </summary>
public sealed class StageDecoder : IDisposable
{
    private readonly ModelStage _stage;
    private readonly IReadOnlyList<IGenerativeStageLayer> _layers;
    private readonly IReadOnlyList<CacheSlot> _slots;
    private readonly Dictionary<string, KeyValueCache> _caches = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PagedKvStore?> _pools = new(StringComparer.Ordinal);

    /// <exception cref="InvalidInputException">A layer of the stage cannot generate (its family has no cached step).</exception>
    public StageDecoder(ModelStage stage)
    {
        _stage = stage;
        _layers = stage.Layers.Select(layer => layer as IGenerativeStageLayer
            ?? throw new InvalidInputException($"layer {layer.LayerName} cannot generate in a pipeline (no cached step for its family)")).ToList();
        _slots = _layers.Select(l => l.CacheSlot).OfType<CacheSlot>().OrderBy(s => s.Layer).ToList();
    }

    /// <summary>Sequences whose cache this stage holds.</summary>
    public int Sequences => _caches.Count;

    /// <summary>Bytes of key/value cache this stage holds now (dense caches; paged stores are <see cref="Pools"/>).</summary>
    public long CacheBytes => _caches.Values.Sum(c => c.AllocatedBytes);

    /// <summary>Paged pools this stage holds.</summary>
    public int Pools => _pools.Count;

    /// <summary>
    /// Runs one step. The returned step's <see cref="GenerationStep.Hidden"/> is new and owned by the caller (logits
    /// [B, vocab] float32 on the CPU when <paramref name="last"/>); its other tensors are the input's.
    /// </summary>
    /// <exception cref="InvalidOperationException">A decode step of a sequence this stage holds no cache for (lost or released).</exception>
    public GenerationStep Run(GenerationStep step, bool last)
    {
        if (step.Release)
        {
            if (_caches.Remove(step.Sequence, out var released))
            {
                released.Dispose();
            }

            if (_pools.Remove(step.Sequence, out var pool))
            {
                pool?.Dispose();
            }

            return step;
        }

        if (step.Paged is { } paged)
        {
            return RunPaged(step, paged, last);
        }

        var batch = step.Hidden.shape[0];
        var length = step.Hidden.shape[1];
        KeyValueCache? cache = null;
        if (_slots.Count > 0)
        {
            if (step.Capacity > 0)
            {
                if (_caches.Remove(step.Sequence, out var stale))
                {
                    stale.Dispose();
                }

                var slot = _slots[0];
                cache = new KeyValueCache(slot.Layer, _slots[^1].Layer - slot.Layer + 1, batch, slot.Heads, step.Capacity, slot.HeadSize, _stage.Device, slot.Dtype);
                _caches[step.Sequence] = cache;
            }
            else if (!_caches.TryGetValue(step.Sequence, out cache))
            {
                throw new InvalidOperationException($"this stage holds no key/value cache for sequence {step.Sequence} (lost with a stage, or released)");
            }

            if (step.KeepRows is not null)
            {
                cache.KeepRows(step.KeepRows);
            }
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = _stage.Device;
        var context = new GenerationContext(step.PositionIds.to(device), step.AttentionMask?.to(device), cache);
        var hidden = step.Hidden.to(device);
        foreach (var layer in _layers)
        {
            hidden = layer.Step(hidden, context);
        }

        cache?.Advance(length);
        if (last)
        {
            hidden = hidden.to(ScalarType.Float32).cpu();
        }

        return step with { Hidden = hidden.MoveToOuterDisposeScope() };
    }

    /// <summary>Frees every cache (the stage itself stays its owner's).</summary>
    public void Dispose()
    {
        foreach (var cache in _caches.Values)
        {
            cache.Dispose();
        }

        foreach (var pool in _pools.Values)
        {
            pool?.Dispose();
        }

        _caches.Clear();
        _pools.Clear();
    }

    // A stage without attention layers holds no store, but still remembers the pool: it too tells a lost pool apart.
    private GenerationStep RunPaged(GenerationStep step, PagedStep paged, bool last)
    {
        if (step.Lost)
        {
            return step;
        }

        if (paged.Create)
        {
            if (_pools.Remove(step.Sequence, out var stale))
            {
                stale?.Dispose();
            }

            _pools[step.Sequence] = _slots.Count == 0 ? null : new PagedKvStore(_slots, checked((int)paged.Blocks), checked((int)paged.BlockSize), _stage.Device);
        }
        else if (!_pools.ContainsKey(step.Sequence))
        {
            return step with { Lost = true };
        }

        var store = _pools[step.Sequence];
        var length = (int)step.Hidden.shape[1];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = _stage.Device;
        var cache = store?.Gather(paged.PastSlots, length);
        try
        {
            var context = new GenerationContext(step.PositionIds.to(device), step.AttentionMask?.to(device), cache);
            var hidden = step.Hidden.to(device);
            foreach (var layer in _layers)
            {
                hidden = layer.Step(hidden, context);
            }

            if (cache is not null)
            {
                cache.Advance(length);
                store!.Scatter(cache, paged.NewSlots, length);
            }

            if (last)
            {
                hidden = hidden.to(ScalarType.Float32).cpu();
            }

            return step with { Hidden = hidden.MoveToOuterDisposeScope() };
        }
        finally
        {
            cache?.Dispose();
        }
    }
}
