using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>
/// Runs <see cref="GenerationStep"/>s through one pipeline stage, keeping the key/value cache of the stage's own
/// attention layers for each sequence in flight (created on its prefill, narrowed when rows finish, freed on release).
/// Not thread-safe: one stage actor drives it.
/// </summary>
public sealed class StageDecoder : IDisposable
{
    private readonly ModelStage _stage;
    private readonly IReadOnlyList<IGenerativeStageLayer> _layers;
    private readonly IReadOnlyList<CacheSlot> _slots;
    private readonly Dictionary<string, KeyValueCache> _caches = new(StringComparer.Ordinal);

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

    /// <summary>Bytes of key/value cache this stage holds now.</summary>
    public long CacheBytes => _caches.Values.Sum(c => c.AllocatedBytes);

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

            return step;
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

        _caches.Clear();
    }
}
