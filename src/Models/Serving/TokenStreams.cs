using System.Collections.Concurrent;

namespace DistributedInference.Models.Serving;

/// <summary>
/// Where a <see cref="ServingReplica"/> in this process reports each token of a request as it is chosen, and learns
/// that the request was cancelled: a registry keyed by request id. A front end registers a listener before submitting
/// the request's job; a replica on another node finds none and the tokens arrive with the job's result instead.
/// </summary>
public static class TokenStreams
{
    private static readonly ConcurrentDictionary<string, ITokenListener> Listeners = new(StringComparer.Ordinal);

    /// <summary>Listens to the tokens of <paramref name="requestId"/> until the returned handle is disposed.</summary>
    public static IDisposable Listen(string requestId, ITokenListener listener)
    {
        if (!Listeners.TryAdd(requestId, listener))
        {
            throw new ArgumentException($"request id {requestId} is listened to already", nameof(requestId));
        }

        return new Registration(requestId);
    }

    /// <summary>The listener of a request, if one in this process listens.</summary>
    public static ITokenListener? Find(string requestId) => Listeners.TryGetValue(requestId, out var listener) ? listener : null;

    private sealed class Registration(string requestId) : IDisposable
    {
        public void Dispose() => Listeners.TryRemove(requestId, out _);
    }
}

/// <summary>Receives a request's tokens as a replica chooses them (on the device's thread: be quick).</summary>
public interface ITokenListener
{
    void OnToken(GeneratedToken token);

    /// <summary>Asked at each step: true stops generating for the request.</summary>
    bool IsCancelled { get; }
}
