using Akka.Actor;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// Replica mode in one process, ready to embed: one device actor per device (each loads its own replica), a splitter,
/// and a client. <see cref="StartAsync"/> returns once every device has its model loaded.
/// </summary>
public sealed class ReplicaRuntime : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly bool _ownsSystem;

    private ReplicaRuntime(ActorSystem system, bool ownsSystem, IReadOnlyList<IActorRef> devices, IActorRef splitter)
    {
        _system = system;
        _ownsSystem = ownsSystem;
        Devices = devices;
        Splitter = splitter;
        Client = new ReplicaClient(system, splitter);
    }

    public IReadOnlyList<IActorRef> Devices { get; }

    public IActorRef Splitter { get; }

    public ReplicaClient Client { get; }

    /// <param name="devices">One device actor each; a name may repeat (cpu,cpu) to run several replicas on one device.</param>
    /// <param name="model">Builds the replica on a device, on that device actor's thread.</param>
    /// <param name="system">An actor system to live in (it needs our HOCON defaults); by default a new local one.</param>
    /// <param name="loadTimeout">How long every device may take to load its model (default 10 minutes).</param>
    /// <param name="recovery">How devices reload their model after a device error (<see cref="DeviceRecovery.Default"/> if null).</param>
    /// <exception cref="InvalidInputException">No devices, or a device's model rejected its input files.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="loadTimeout"/> is not positive.</exception>
    /// <exception cref="JobFailedException">A device could not load its model, or the devices did not within <paramref name="loadTimeout"/>.</exception>
    public static async Task<ReplicaRuntime> StartAsync(
        IReadOnlyList<DeviceName> devices,
        ReplicaModelFactory model,
        ActorSystem? system = null,
        TimeSpan? loadTimeout = null,
        CancellationToken cancellation = default,
        DeviceRecovery? recovery = null)
    {
        ArgumentNullException.ThrowIfNull(devices);
        ArgumentNullException.ThrowIfNull(model);
        if (devices.Count == 0)
        {
            throw new InvalidInputException("no devices given");
        }

        if (loadTimeout is { } given)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(given, TimeSpan.Zero, nameof(loadTimeout));
        }

        CpuThreads.ShareAmong(devices);
        var ownsSystem = system is null;
        system ??= ActorSystem.Create("distributed-inference", DistributedInferenceConfig.Default());
        var limit = loadTimeout ?? TimeSpan.FromMinutes(10);
        var ready = Request.Start(system, null, null, new RequestPolicy { Deadline = limit, CancelWait = TimeSpan.Zero, Watch = RequestWatch.None }, cancellation);
        var refs = devices.Select((device, i) => system.ActorOf(DeviceActor.Props(device, model, ready.Actor, recovery), DeviceActor.Name(i))).ToList();
        try
        {
            for (var loaded = 0; loaded < refs.Count; loaded++)
            {
                switch (await ready.NextAsync())
                {
                    case DeviceLoadFailed failed:
                        var message = $"{failed.Device}: could not load the model: {failed.Reason}";
                        throw failed.InputError ? new InvalidInputException(message) : new JobFailedException(message);
                    case DeadlinePassed:
                        throw new JobFailedException($"the devices did not load the model within {limit}");
                    case RequestCancelled:
                        throw new OperationCanceledException("cancelled while the devices loaded the model", cancellation);
                }
            }
        }
        catch
        {
            await Shutdown(system, ownsSystem, refs);
            throw;
        }
        finally
        {
            await ready.DisposeAsync();
        }

        var splitter = system.ActorOf(ReplicaSplitter.Props(refs), ReplicaSplitter.ActorName);
        return new ReplicaRuntime(system, ownsSystem, refs, splitter);
    }

    /// <summary>Every device's status, in device order.</summary>
    public async Task<IReadOnlyList<DeviceStatus>> DeviceStatusAsync(TimeSpan? timeout = null, CancellationToken cancellation = default) =>
        await Task.WhenAll(Devices.Select(d => d.Ask<DeviceStatus>(GetDeviceStatus.Instance, timeout ?? TimeSpan.FromSeconds(30), cancellation)));

    public async ValueTask DisposeAsync() => await Shutdown(_system, _ownsSystem, [.. Devices, Splitter]);

    private static async Task Shutdown(ActorSystem system, bool ownsSystem, IReadOnlyList<IActorRef> actors)
    {
        if (ownsSystem)
        {
            await system.Terminate();
            return;
        }

        await Task.WhenAll(actors.Select(a => a.GracefulStop(TimeSpan.FromSeconds(30))));
    }
}
