using System.Runtime.CompilerServices;
using Akka.Actor;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Wire;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>
/// How a message reaches an actor, decided by where the actor is, never by an address carried in the message: to an
/// actor of this node the message object itself (its rows move with it, <see cref="RowBatch"/>'s rule); to another
/// node's actor a bulk message (<see cref="IBulkMessage"/>) goes on the data plane when this node has one, on the
/// connection to that node's address (<see cref="TensorDataPlane.Send"/>), and everything else over Akka. Whatever rows a
/// message carries to another node are released once written (the receiver gets its own copy): by the data plane after
/// its frame, or here, where a message for Akka is serialized before it is told (<see cref="SendByAkka"/>). All messages
/// of one kind from one sender to one target take the same way, so they keep their order.
/// </summary>
public static class Transport
{
    private static readonly ConditionalWeakTable<ActorSystem, DistributedInferenceSerializer> Serializers = new();

    /// <summary>Tells <paramref name="target"/> <paramref name="message"/> as sent by <paramref name="sender"/>, the way its place calls for.</summary>
    public static void Send(ActorSystem system, IActorRef target, object message, IActorRef? sender = null)
    {
        if (IsLocal(target))
        {
            target.Tell(message, sender ?? ActorRefs.NoSender);
        }
        else if (message is IBulkMessage && TensorDataPlane.For(system) is { } plane)
        {
            plane.Send(target, message, sender);
        }
        else
        {
            SendByAkka(system, target, message, sender);
        }
    }

    /// <summary>
    /// Over Akka: a message that carries rows to another node is serialized now and its rows released (Akka carries the
    /// bytes and the receiver reads the message itself); any other message is told as it is.
    /// </summary>
    public static void SendByAkka(ActorSystem system, IActorRef target, object message, IActorRef? sender = null)
    {
        if (message is ICarriesRows carrying && !IsLocal(target))
        {
            DistributedInferenceSerializer.Serialized serialized;
            try
            {
                serialized = SerializerOf(system).Serialize(message);
            }
            finally
            {
                carrying.ReleaseRows();
            }

            target.Tell(serialized, sender ?? ActorRefs.NoSender);
            return;
        }

        target.Tell(message, sender ?? ActorRefs.NoSender);
    }

    /// <summary>Whether <paramref name="target"/> lives in this process's actor system (no serialization on the way).</summary>
    public static bool IsLocal(IActorRef target) => target is not IInternalActorRef { IsLocal: false };

    private static DistributedInferenceSerializer SerializerOf(ActorSystem system) =>
        Serializers.GetValue(system, s => (DistributedInferenceSerializer)s.Serialization.FindSerializerForType(typeof(IWireMessage)));
}
