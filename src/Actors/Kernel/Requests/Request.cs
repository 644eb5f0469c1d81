using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Akka.Actor;

namespace DistributedInference.Actors.Kernel.Requests;

/// <summary>
/// One request from ordinary async code to an actor, with one short-lived actor of its own (Akka's per-request actor,
/// as <c>DeviceGroupQuery</c> in the Akka.NET tutorial): it sends the request with itself as the reply address, watches
/// whom <see cref="RequestPolicy.Watch"/> says, keeps the policy's deadlines and re-sends with timers, tells the target
/// to cancel when the caller's token is cancelled, and hands every answer, in order, to <see cref="ReadAllAsync"/>,
/// followed by an outcome of its own when it ends without one (<see cref="AnswererLost"/>, <see cref="NoAnswer"/>,
/// <see cref="RequestCancelled"/>, <see cref="DeadlinePassed"/>). Disposing the request stops its actor.
/// </summary>
public sealed class Request : IAsyncDisposable
{
    private readonly Channel<object> _answers;

    private Request(IActorRef actor, Channel<object> answers)
    {
        Actor = actor;
        _answers = answers;
    }

    /// <summary>The request's actor: where answers go.</summary>
    public IActorRef Actor { get; }

    /// <summary>
    /// Sends <paramref name="message"/> (built with the request's own actor as the reply address) to
    /// <paramref name="target"/>, as that actor; null target: a request that only collects what is sent to
    /// <see cref="Actor"/> (devices reporting ready, say).
    /// </summary>
    public static Request Start(IActorRefFactory factory, IActorRef? target, Func<IActorRef, object>? message, RequestPolicy policy, CancellationToken cancellation = default)
    {
        var answers = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
        var actor = factory.ActorOf(Props.Create(() => new RequestActor(target, message, policy, answers.Writer, cancellation)));
        return new Request(actor, answers);
    }

    /// <summary>
    /// Watches <paramref name="actor"/> too (one created after the request, told to answer it): when it stops, the request
    /// ends with <see cref="AnswererLost"/> after <see cref="RequestPolicy.LostGrace"/>.
    /// </summary>
    public void Watch(IActorRef actor) => Actor.Tell(new RequestActor.WatchActor(actor));

    /// <summary>Sends the request and returns its first answer (or the outcome that ended it without one).</summary>
    public static async Task<object> AskAsync(IActorRefFactory factory, IActorRef target, Func<IActorRef, object> message, RequestPolicy policy, CancellationToken cancellation = default)
    {
        await using var request = Start(factory, target, message, policy with { AnnounceAnswerer = false }, cancellation);
        return await request.NextAsync();
    }

    /// <summary>The next answer, or the outcome that ended the request; waits until there is one.</summary>
    /// <exception cref="InvalidOperationException">The request ended already and everything was read.</exception>
    public async ValueTask<object> NextAsync()
    {
        try
        {
            return await _answers.Reader.ReadAsync(CancellationToken.None);
        }
        catch (ChannelClosedException e)
        {
            throw new InvalidOperationException("the request ended already", e);
        }
    }

    /// <summary>Every answer as it comes, then the outcome that ended the request, if any.</summary>
    public async IAsyncEnumerable<object> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellation = default)
    {
        await foreach (var answer in _answers.Reader.ReadAllAsync(cancellation))
        {
            yield return answer;
        }
    }

    /// <summary>Stops the request's actor (answers that come later are dropped).</summary>
    public ValueTask DisposeAsync()
    {
        Actor.Tell(PoisonPill.Instance);
        return ValueTask.CompletedTask;
    }
}
