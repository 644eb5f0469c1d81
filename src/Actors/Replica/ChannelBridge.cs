using System.Threading.Channels;
using Akka.Actor;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// Writes every message it receives into a channel, so code outside the actor system can await replies one by one
/// (the caller stops it when done).
/// </summary>
public sealed class ChannelBridge : ReceiveActor
{
    public ChannelBridge(ChannelWriter<object> writer)
    {
        ReceiveAny(message => writer.TryWrite(message));
    }

    public static Props Props(ChannelWriter<object> writer) => Akka.Actor.Props.Create(() => new ChannelBridge(writer));

    /// <summary>A bridge and the channel it feeds.</summary>
    public static (IActorRef Bridge, ChannelReader<object> Reader) Open(IActorRefFactory system)
    {
        var channel = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
        return (system.ActorOf(Props(channel.Writer)), channel.Reader);
    }
}
