using Akka.Actor;

namespace DistributedInference.Actors.Kernel.Requests;

/// <summary>The first answer came from an actor at <see cref="Node"/> (with <see cref="RequestPolicy.AnnounceAnswerer"/>).</summary>
public sealed record AnswererFound(Address Node);

/// <summary>The watched actor (at <see cref="Node"/>) stopped before the request ended: it ended, or its node went away.</summary>
public sealed record AnswererLost(Address Node);

/// <summary>Nothing answered within <see cref="Within"/> (<see cref="RequestPolicy.FirstAnswerWithin"/>).</summary>
public sealed record NoAnswer(TimeSpan Within);

/// <summary>The caller cancelled; the target was told (<see cref="RequestPolicy.CancelMessage"/>) and had its last chance to answer.</summary>
public sealed record RequestCancelled
{
    public static readonly RequestCancelled Instance = new();
}

/// <summary>The request outlived <see cref="Deadline"/> (<see cref="RequestPolicy.Deadline"/>); the target was told to cancel.</summary>
public sealed record DeadlinePassed(TimeSpan Deadline);
