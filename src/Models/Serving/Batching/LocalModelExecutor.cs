using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// The <see cref="IModelExecutor"/> of a whole decoder on one device of this process: a <see cref="PagedKvStore"/>
/// gather, the model's <see cref="ICausalLanguageModel.NextTokenLogits"/>, a scatter. Each pass holds the model's
/// monitor, so a model shared with a node's device actor (<see cref="DeviceDecoders"/>) runs one forward at a time.
/// Does not own the model; owns the store.
/// </summary>
public sealed class LocalModelExecutor : IModelExecutor
{
    private readonly ICausalLanguageModel _model;
    private readonly Device _device;
    private PagedKvStore? _store;

    /// <param name="model">A decoder on <paramref name="device"/>.</param>
    /// <param name="device">The model's device.</param>
    public LocalModelExecutor(ICausalLanguageModel model, Device device)
    {
        _model = model;
        _device = device;
        BytesPerPosition = PagedKvStore.BytesPerPosition(model, device);
    }

    public string Name => _device.ToString();

    public int VocabSize => _model.VocabSize;

    public long BytesPerPosition { get; }

    public void CheckInput(IReadOnlyList<long> promptTokenIds, long maxNewTokens)
    {
        using var ids = tensor(promptTokenIds.ToArray()).unsqueeze(0);
        _model.CheckInput(ids, maxNewTokens);
    }

    public void InitializeCache(int blocks, int blockSize)
    {
        try
        {
            _store = new PagedKvStore(_model, blocks, blockSize, _device);
        }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or OutOfMemoryException)
        {
            throw new InvalidInputException($"could not allocate a KV cache of {(double)blocks * blockSize * BytesPerPosition / (1 << 20):0.#} MiB on {_device} ({e.Message.Split('\n')[0]}): give it less memory");
        }
    }

    public Tensor ExecuteModel(IReadOnlyList<ScheduledChunk> chunks)
    {
        var store = _store ?? throw new InvalidOperationException("the KV cache is not initialised");
        var (ids, positions) = ScheduledChunk.Inputs(chunks);
        var length = chunks[0].Count;
        var (cache, mask, slots) = store.Gather(chunks.Select(c => ((IReadOnlyList<int>)c.Sequence.Blocks, c.Start)).ToList(), length);
        using (cache)
        {
            lock (_model)
            {
                var logits = _model.NextTokenLogits(
                    tensor(ids, device: _device).view(chunks.Count, length),
                    tensor(positions, device: _device).view(chunks.Count, length),
                    mask,
                    cache).to(ScalarType.Float32);
                store.Scatter(cache, slots, length);
                return logits;
            }
        }
    }

    public void Dispose() => _store?.Dispose();
}
