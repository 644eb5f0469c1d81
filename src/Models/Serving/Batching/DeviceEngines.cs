using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// The continuous-batching engines of one process: one <see cref="ContinuousBatchingEngine"/> per device over the
/// process's <see cref="DeviceDecoders"/>, behind one <see cref="EngineRouter"/>. Each engine's KV cache is
/// <see cref="ContinuousBatchingOptions.KvCacheBytes"/>, but never more than every running sequence at full context
/// would use. Owns the engines (not the decoders): disposing stops them.
/// </summary>
public sealed class DeviceEngines : IDisposable
{
    private DeviceEngines(IReadOnlyList<ContinuousBatchingEngine> engines, IReadOnlyList<DeviceName> devices, int blockSize)
    {
        Engines = engines;
        Devices = devices;
        Router = new EngineRouter(engines);
        MaxPositions = engines.Min(e => e.Load.TotalBlocks) * blockSize;
    }

    /// <summary>The engines, one per device, in the order of <see cref="Devices"/>.</summary>
    public IReadOnlyList<ContinuousBatchingEngine> Engines { get; }

    /// <summary>The devices.</summary>
    public IReadOnlyList<DeviceName> Devices { get; }

    /// <summary>Spreads requests over the engines.</summary>
    public EngineRouter Router { get; }

    /// <summary>Positions (prompt and output) one sequence may use at most: the smallest cache's (vLLM's <c>max_model_len</c>
    /// when the cache is smaller than the model's context).</summary>
    public int MaxPositions { get; }

    /// <summary>Starts an engine on each of <paramref name="devices"/>, loading the decoder there if it is not yet.</summary>
    /// <param name="contextLength">The model's context (positions): the cache stops at <c>MaxSequences x contextLength</c>.</param>
    /// <exception cref="InvalidInputException">Impossible options, or a cache that cannot be allocated.</exception>
    public static DeviceEngines Start(DeviceDecoders decoders, IReadOnlyList<DeviceName> devices, ContinuousBatchingOptions options, int contextLength)
    {
        if (devices.Count == 0)
        {
            throw new InvalidInputException("continuous batching needs at least one device");
        }

        var sequences = (options.Scheduler ?? new IterationSchedulerOptions()).MaxSequences;
        var engines = new List<ContinuousBatchingEngine>();
        try
        {
            foreach (var device in devices)
            {
                var decoder = decoders.Model(device);
                var torchDevice = device.ToTorch();
                var useful = (long)sequences * contextLength * PagedKvStore.BytesPerPosition(decoder, torchDevice);
                engines.Add(new ContinuousBatchingEngine(decoder, torchDevice, options with { KvCacheBytes = Math.Min(options.KvCacheBytes, useful) }));
            }
        }
        catch
        {
            foreach (var engine in engines)
            {
                engine.Dispose();
            }

            throw;
        }

        return new DeviceEngines(engines, devices, options.BlockSize);
    }

    public void Dispose() => Router.Dispose();
}
