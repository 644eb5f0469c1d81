using System.Threading.Channels;
using Akka.Actor;
using DistributedInference.Actors.Kernel.Membership;

namespace DistributedInference.Actors.Kernel.Requests;

/// <summary>
/// Writes every message it receives into a channel, so code outside the actor system can await replies one by one
/// (the caller stops it when done). With <c>watchFirstSender</c> it watches whoever answers first and writes
/// <see cref="AnswererLost"/> if that actor stops, after a grace period for answers still on their way (the data plane
/// may deliver after Akka's notice of the stop): a caller that already has its last answer has stopped reading by then.
/// <see cref="Watch"/> names the actor to watch up front instead.
/// With <c>announceAnswerer</c> it also writes <see cref="AnswererFound"/> (where the answerer lives) before that first answer.
/// </summary>
public sealed class ChannelBridge : MembersOnlyActor, IWithTimers
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    public ChannelBridge(ChannelWriter<object> writer, bool watchFirstSender, bool announceAnswerer = false)
    {
        var watching = !watchFirstSender;
        Receive<Terminated>(terminated => Timers.StartSingleTimer("answerer-lost", new GraceOver(terminated.ActorRef.Path.Address), Grace));
        Receive<GraceOver>(over => writer.TryWrite(new AnswererLost(over.Node)));
        Receive<WatchAnswerer>(watch =>
        {
            watching = true;
            Context.Watch(watch.Answerer);
        });
        ReceiveAny(message =>
        {
            if (!watching && !Sender.IsNobody())
            {
                watching = true;
                Context.Watch(Sender);
                if (announceAnswerer)
                {
                    writer.TryWrite(new AnswererFound(Sender.Path.Address));
                }
            }

            writer.TryWrite(message);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ChannelWriter<object> writer, bool watchFirstSender = false, bool announceAnswerer = false) =>
        Akka.Actor.Props.Create(() => new ChannelBridge(writer, watchFirstSender, announceAnswerer));

    /// <summary>A bridge and the channel it feeds.</summary>
    public static (IActorRef Bridge, ChannelReader<object> Reader) Open(IActorRefFactory system, bool watchFirstSender = false, bool announceAnswerer = false)
    {
        var channel = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
        return (system.ActorOf(Props(channel.Writer, watchFirstSender, announceAnswerer)), channel.Reader);
    }

    /// <summary>Watch <paramref name="answerer"/> (the actor whose answers the caller awaits): <see cref="AnswererLost"/> if it stops.</summary>
    public static void Watch(IActorRef bridge, IActorRef answerer) => bridge.Tell(new WatchAnswerer(answerer));

    private sealed record GraceOver(Address Node);

    private sealed record WatchAnswerer(IActorRef Answerer);
}

/// <summary>The first answer came from an actor at <see cref="Node"/> (the bridge now watches it).</summary>
public sealed record AnswererFound(Address Node);

/// <summary>The actor that answered first (at <see cref="Node"/>) stopped: it ended, or its node went away.</summary>
public sealed record AnswererLost(Address Node);
