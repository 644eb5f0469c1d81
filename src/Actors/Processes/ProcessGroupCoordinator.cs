using Akka.Actor;
using DistributedInference.Actors.Kernel.Membership;

namespace DistributedInference.Actors.Processes;

/// <summary>
/// Runs on the main process (index 0) of a <see cref="ClusterProcessGroup"/>: collects each round's parts
/// (<see cref="ProcessArrived"/>) and, once every process has arrived, answers each of them with all the parts
/// (<see cref="ProcessesReleased"/>). A barrier is a round with empty parts. Answers <see cref="GetProcessArrivals"/>
/// so that a process whose wait timed out can name those that did not arrive.
/// </summary>
public sealed class ProcessGroupCoordinator : MembersOnlyActor
{
    /// <summary>The actor's name under <c>/user</c> on the main process.</summary>
    public const string ActorName = "process-group";

    private readonly int _size;
    private readonly long _maximumBytes;
    private readonly Dictionary<int, (byte[]?[] Parts, IActorRef?[] Senders)> _rounds = new();
    private int _released = -1;

    /// <summary>A coordinator for <paramref name="size"/> processes whose released rounds must fit <paramref name="maximumBytes"/>.</summary>
    public ProcessGroupCoordinator(int size, long maximumBytes)
    {
        _size = size;
        _maximumBytes = maximumBytes;
        Receive<ProcessArrived>(HandleArrived);
        Receive<GetProcessArrivals>(HandleGetArrivals);
    }

    /// <summary>The props of a coordinator for <paramref name="size"/> processes (see the constructor).</summary>
    public static Props Props(int size, long maximumBytes) => Akka.Actor.Props.Create(() => new ProcessGroupCoordinator(size, maximumBytes));

    private void HandleArrived(ProcessArrived arrived)
    {
        if (arrived.Rank < 0 || arrived.Rank >= _size || arrived.Round <= _released)
        {
            Sender.Tell(new ProcessRoundRefused(arrived.Round, $"process {arrived.Rank} arrived at round {arrived.Round}, which a group of {_size} cannot take (last released round {_released})"));
            return;
        }

        if (!_rounds.TryGetValue(arrived.Round, out var round))
        {
            round = (new byte[]?[_size], new IActorRef?[_size]);
            _rounds[arrived.Round] = round;
        }

        round.Parts[arrived.Rank] = arrived.Part;
        round.Senders[arrived.Rank] = Sender;
        if (round.Senders.Any(s => s is null))
        {
            return;
        }

        _rounds.Remove(arrived.Round);
        _released = Math.Max(_released, arrived.Round);
        var total = round.Parts.Sum(p => (long)p!.Length);
        object answer = total > _maximumBytes
            ? new ProcessRoundRefused(arrived.Round, $"the {_size} parts of this gather are {total} bytes together, more than the {_maximumBytes} one message may carry (akka.remote.dot-netty.tcp.maximum-frame-size): gather smaller parts, or save them to files")
            : new ProcessesReleased(arrived.Round, round.Parts.Select(p => p!).ToList());
        foreach (var sender in round.Senders)
        {
            sender!.Tell(answer);
        }
    }

    private void HandleGetArrivals(GetProcessArrivals get)
    {
        IReadOnlyList<int> ranks = get.Round <= _released
            ? Enumerable.Range(0, _size).ToList()
            : _rounds.TryGetValue(get.Round, out var round) ? Enumerable.Range(0, _size).Where(r => round.Senders[r] is not null).ToList() : [];
        Sender.Tell(new ProcessArrivals(get.Round, ranks));
    }
}
