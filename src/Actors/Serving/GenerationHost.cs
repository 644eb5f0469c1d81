using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Serving;

/// <summary>
/// What a node generates with (<c>di node --serve requests</c> with a decoder): the model, its dtype, and how to start
/// its continuous-batching engines (on a thread of the pool, when a server first asks for them).
/// </summary>
public sealed record ServedGenerationSetup(ModelIdentity Model, Precision DType, Func<RunningEngines> Start);

/// <summary>
/// A node's started engines: where its sequences go (a <see cref="DeviceEngines.Router"/>), on how many devices, the
/// longest sequence they take (positions), what disposing stops them, and how their KV caches were sized (for the log).
/// </summary>
public sealed record RunningEngines(IGenerationEngine Engine, int Devices, int MaxPositions, IDisposable Owner, string CacheSizing = "")
{
    /// <summary>The engines of <paramref name="engines"/>; <paramref name="alongside"/> (their metrics, say) is disposed before them.</summary>
    public static RunningEngines Of(DeviceEngines engines, IReadOnlyList<IDisposable>? alongside = null) =>
        new(engines.Router, engines.Devices.Count, engines.MaxPositions, new Owned([.. alongside ?? [], engines]), engines.DescribeCache());

    private sealed class Owned(IReadOnlyList<IDisposable> parts) : IDisposable
    {
        public void Dispose()
        {
            foreach (var part in parts)
            {
                part.Dispose();
            }
        }
    }
}

/// <summary>
/// A node's continuous-batching engines as the cluster sees them, at the fixed path <c>/user/generation</c>: a server
/// (<see cref="ClusterGenerationEngine"/>) sends <see cref="GenerateSequence"/> and gets the sequence's tokens streamed
/// back as the engine chooses them (<see cref="SequenceTokens"/>), or one <see cref="SequenceFailed"/>. A sequence ends
/// on <see cref="CancelSequence"/> or when its requester stops (its node lost, say) at the engine's next iteration.
/// Starts its engines when a server first asks (loading the weights if the node has not yet); until they run it
/// answers <see cref="SequenceFailed"/> (unavailable) and no <see cref="GetServedGeneration"/>. Owns the engines.
/// </summary>
public sealed class GenerationHost : MembersOnlyActor
{
    public const string ActorName = "generation";

    /// <summary>
    /// A test seam (a count N): each sequence's tokens after its first N are held until a member leaves the cluster, so a
    /// test can kill a node while every stream is known to be mid-way, whatever the machine's speed. Unset in production.
    /// </summary>
    public const string HoldAfterTokensVariable = "DI_TEST_GENERATION_HOLD_AFTER_TOKENS";

    private readonly ServedGenerationSetup _setup;
    private readonly Dictionary<string, Running> _running = [];
    private readonly Dictionary<IActorRef, int> _requesters = [];
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly int? _holdAfter;
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RunningEngines? _engines;
    private string _unavailable = "its engines are still starting";
    private bool _starting;
    private bool _failed;

    public GenerationHost(ServedGenerationSetup setup)
    {
        _setup = setup;
        _holdAfter = int.TryParse(Environment.GetEnvironmentVariable(HoldAfterTokensVariable), out var hold) && hold >= 0 ? hold : null;

        Receive<Started>(started =>
        {
            _engines = started.Engines;
            _log.Info("Generating with {0} ({1}) on {2} device(s), continuous batching, sequences of up to {3} positions; {4}", setup.Model, setup.DType.Name(), started.Engines.Devices, started.Engines.MaxPositions, started.Engines.CacheSizing);
        });
        Receive<StartFailed>(failed =>
        {
            _unavailable = $"its engines could not start: {failed.Error}";
            _failed = true;
            _log.Error("The generation engines could not start: {0}", failed.Error);
        });
        Receive<GetServedGeneration>(_ =>
        {
            StartEngines();
            if (_engines is not null)
            {
                Sender.Tell(new ServedGeneration(setup.Model, setup.DType, _engines.Devices, _engines.MaxPositions));
            }
            else if (_failed)
            {
                Sender.Tell(new ServedGeneration(setup.Model, setup.DType, 0, 0, _unavailable));
            }
        });
        Receive<GenerateSequence>(Generate);
        Receive<CancelSequence>(cancel =>
        {
            if (_running.TryGetValue(cancel.RequestId, out var running))
            {
                running.Cancellation.Cancel();
            }
        });
        Receive<SequenceEnded>(ended => End(ended.RequestId));
        Receive<Terminated>(terminated =>
        {
            foreach (var running in _running.Values.Where(r => r.ReplyTo.Equals(terminated.ActorRef)))
            {
                running.Cancellation.Cancel();
            }
        });
        Receive<ClusterEvent.MemberRemoved>(_ => _released.TrySetResult());
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
    }

    public static Props Props(ServedGenerationSetup setup) => Akka.Actor.Props.Create(() => new GenerationHost(setup));

    protected override void PreStart()
    {
        if (_holdAfter is not null)
        {
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.MemberRemoved));
        }
    }

    // The engines (their KV caches) are made when a server first looks for them, not for a node only di batch uses.
    private void StartEngines()
    {
        if (_starting)
        {
            return;
        }

        _starting = true;
        Task.Run(_setup.Start).PipeTo(Self, success: engines => new Started(engines), failure: e => new StartFailed(e is InvalidInputException ? e.Message : $"{e.GetType().Name}: {e.Message}"));
    }

    protected override void PostStop()
    {
        foreach (var running in _running.Values)
        {
            running.Cancellation.Cancel();
        }

        _released.TrySetResult();
        _engines?.Owner.Dispose();
    }

    private void Generate(GenerateSequence message)
    {
        var request = message.Request;
        StartEngines();
        if (_running.ContainsKey(request.RequestId))
        {
            return;
        }

        if (_engines is null || !message.Model.Equals(_setup.Model))
        {
            var why = _engines is null ? _unavailable : $"it generates with {_setup.Model}, not {message.Model}";
            message.ReplyTo.Tell(new SequenceFailed(request.RequestId, SequenceFailure.Unavailable, $"node {((ExtendedActorSystem)Context.System).Provider.DefaultAddress}: {why}"));
            return;
        }

        var running = new Running(message.ReplyTo, new CancellationTokenSource());
        _running[request.RequestId] = running;
        if (_requesters.TryGetValue(message.ReplyTo, out var count))
        {
            _requesters[message.ReplyTo] = count + 1;
        }
        else
        {
            _requesters[message.ReplyTo] = 1;
            Context.Watch(message.ReplyTo);
        }

        var self = Self;
        _ = Relay(_engines.Engine, request, message.ReplyTo, running.Cancellation.Token, self, _holdAfter, _released.Task)
            .ContinueWith(_ => self.Tell(new SequenceEnded(request.RequestId)), TaskScheduler.Default);
    }

    // Off the actor: streams one sequence's updates to its requester, in order, then says how it ended.
    private static async Task Relay(IGenerationEngine engine, GenerationRequest request, IActorRef replyTo, CancellationToken cancellation, IActorRef self, int? holdAfter, Task released)
    {
        var sent = 0;
        try
        {
            await foreach (var update in engine.GenerateAsync(request, cancellation))
            {
                if (holdAfter is { } hold && sent >= hold)
                {
                    await released.WaitAsync(cancellation);
                }

                replyTo.Tell(new SequenceTokens(request.RequestId, update.Tokens, update.Finished), self);
                sent += update.Tokens.Count;
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
        }
        catch (InvalidInputException e)
        {
            replyTo.Tell(new SequenceFailed(request.RequestId, SequenceFailure.Invalid, e.Message), self);
        }
        catch (EngineOverloadedException e)
        {
            replyTo.Tell(new SequenceFailed(request.RequestId, SequenceFailure.Overloaded, e.Message), self);
        }
        catch (Exception e)
        {
            replyTo.Tell(new SequenceFailed(request.RequestId, SequenceFailure.Unavailable, e.Message), self);
        }
    }

    private void End(string requestId)
    {
        if (!_running.Remove(requestId, out var running))
        {
            return;
        }

        running.Cancellation.Dispose();
        if (_requesters.TryGetValue(running.ReplyTo, out var count) && count > 1)
        {
            _requesters[running.ReplyTo] = count - 1;
        }
        else
        {
            _requesters.Remove(running.ReplyTo);
            Context.Unwatch(running.ReplyTo);
        }
    }

    private sealed record Running(IActorRef ReplyTo, CancellationTokenSource Cancellation);

    private sealed record Started(RunningEngines Engines);

    private sealed record StartFailed(string Error);

    private sealed record SequenceEnded(string RequestId);
}
