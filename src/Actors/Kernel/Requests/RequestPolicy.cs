namespace DistributedInference.Actors.Kernel.Requests;

/// <summary>
/// How one request waits (<see cref="Request"/>): for its first answer, for its end, for an answerer that may stop, and
/// what it tells the target when it gives up. Every wait is bounded: a request never waits for ever.
/// </summary>
public sealed record RequestPolicy
{
    /// <summary>The first answer must come within this, or the request ends with <see cref="NoAnswer"/>; null: no bound of its own.</summary>
    public TimeSpan? FirstAnswerWithin { get; init; }

    /// <summary>Until the first answer, the request is sent again after each of these waits in turn (then every last one); empty: sent once.</summary>
    public IReadOnlyList<TimeSpan> ResendAfter { get; init; } = [];

    /// <summary>
    /// The whole request must end within this: then <see cref="CancelMessage"/> is told, and after
    /// <see cref="CancelWait"/> the request ends with <see cref="DeadlinePassed"/>; null: no deadline.
    /// </summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>What the target is told when the caller cancels or the deadline passes (null: nothing).</summary>
    public object? CancelMessage { get; init; }

    /// <summary>How long a cancelled request still waits for the target's last answers before it ends.</summary>
    public TimeSpan CancelWait { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Whom the request watches: the target (<see cref="RequestWatch.Target"/>), the first actor that answers (a target
    /// that forwards the request to the actor doing the work), or nobody. When the watched actor stops, the request ends
    /// with <see cref="AnswererLost"/> after <see cref="LostGrace"/> (answers on the data plane may trail Akka's notice).
    /// </summary>
    public RequestWatch Watch { get; init; } = RequestWatch.Target;

    /// <summary>How long after the watched actor stopped the request still takes answers.</summary>
    public TimeSpan LostGrace { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Whether the first answer is preceded by <see cref="AnswererFound"/> (where the answerer lives).</summary>
    public bool AnnounceAnswerer { get; init; }
}

/// <summary>Whom a request watches (<see cref="RequestPolicy.Watch"/>).</summary>
public enum RequestWatch
{
    /// <summary>The actor the request was sent to.</summary>
    Target,

    /// <summary>The first actor that answers.</summary>
    FirstAnswerer,

    /// <summary>Nobody.</summary>
    None,
}
