using Akka.Actor;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using Microsoft.Extensions.Hosting;

namespace DistributedInference.Actors.Hosting;

/// <summary>
/// A host's start-up waits here for its device actors to load their models (started after Akka's own hosted service):
/// it ends once every device answered, and fails, with each device's cause, when none could load (a host that runs
/// no job is no host at all). Devices that failed while others loaded are left out of jobs (their actors stop).
/// </summary>
internal sealed class DeviceLoading : IHostedService
{
    private readonly TaskCompletionSource<Request> _answers = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _devices;

    /// <summary>Where the device actors answer <see cref="DeviceReady"/> or <see cref="DeviceLoadFailed"/>.</summary>
    public IActorRef Listen(ActorSystem system, int devices)
    {
        _devices = devices;
        var request = Request.Start(system, null, null, new RequestPolicy { Watch = RequestWatch.None });
        _answers.TrySetResult(request);
        return request.Actor;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var answers = await _answers.Task.WaitAsync(cancellationToken);
        var failures = new List<DeviceLoadFailed>();
        for (var answered = 0; answered < _devices; answered++)
        {
            if (await answers.NextAsync().AsTask().WaitAsync(cancellationToken) is DeviceLoadFailed failed)
            {
                failures.Add(failed);
            }
        }

        if (_devices > 0 && failures.Count == _devices)
        {
            var message = $"no device could load the model: {string.Join("; ", failures.Select(f => $"{f.Device}: {f.Reason}"))}";
            throw failures.All(f => f.InputError) ? new InvalidInputException(message) : new JobFailedException(message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
