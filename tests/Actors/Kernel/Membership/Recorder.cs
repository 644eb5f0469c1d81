using Akka.Actor;

namespace DistributedInference.Actors.Tests.Kernel.Membership;

/// <summary>Adds every message it receives to a list (locked by the list), for a test on another actor system to read.</summary>
internal sealed class Recorder : ReceiveActor
{
    public Recorder(List<object> heard) => ReceiveAny(message =>
    {
        lock (heard)
        {
            heard.Add(message);
        }
    });
}
