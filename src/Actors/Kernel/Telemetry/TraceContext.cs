using System.Diagnostics;

namespace DistributedInference.Actors.Kernel.Telemetry;

/// <summary>
/// W3C trace context across nodes: a message that starts work elsewhere (a job's submission, a batch sent to a device)
/// carries the sender's span as a <c>traceparent</c> string (<c>00-{trace id}-{span id}-{flags}</c>,
/// <see cref="Activity.Id"/> in W3C format), and the receiver starts its span as that span's child, so one job shows as
/// one trace over the client, its coordinator and every device. Inside actors, spans are <em>detached</em>: started
/// without becoming <see cref="Activity.Current"/> (an actor's thread runs other actors' messages next), and ended
/// by whoever holds them.
/// </summary>
public static class TraceContext
{
    /// <summary>
    /// Starts a span of <see cref="Instrumentation.Source"/> as the child of <paramref name="traceParent"/> (or a root
    /// span when it is null or malformed), leaving <see cref="Activity.Current"/> as it was. Null when nothing listens
    /// (no tracer provider samples it): recording a span costs nothing then.
    /// </summary>
    /// <returns>The span; the caller stops it (<see cref="Activity.Dispose"/>).</returns>
    public static Activity? StartDetached(string name, ActivityKind kind, string? traceParent, params ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var previous = Activity.Current;
        // No parent given: a root span, whatever span this thread last ran.
        Activity.Current = null;
        var parent = traceParent is not null && ActivityContext.TryParse(traceParent, null, out var context) ? context : default;
        var activity = Instrumentation.Source.StartActivity(name, kind, parent);
        if (activity is not null)
        {
            foreach (var tag in tags)
            {
                activity.SetTag(tag.Key, tag.Value);
            }
        }

        Activity.Current = previous;
        return activity;
    }

    /// <summary>Ends <paramref name="activity"/> (with an error status when <paramref name="error"/> is given), leaving <see cref="Activity.Current"/> as it was.</summary>
    public static void Stop(Activity? activity, string? error = null)
    {
        if (activity is null)
        {
            return;
        }

        var previous = Activity.Current;
        if (error is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, error);
        }

        activity.Stop();
        Activity.Current = previous;
    }
}
