namespace DistributedInference.Models.Serving;

/// <summary>
/// The seam between the serving front ends (the OpenAI-compatible HTTP server, <c>IChatClient</c>) and what generates:
/// a request of token ids, sampling parameters and stop ids goes in, its tokens stream back, ending with a finish
/// reason (vLLM's <c>EngineCoreRequest</c> / <c>EngineCoreOutput</c>, reduced to what a front end needs). Cancelling the
/// token ends the request on the engine. Today's implementation runs each request as a replica job; the continuous-
/// batching engine (one iteration-level scheduler per device) implements the same interface.
/// </summary>
public interface IGenerationEngine
{
    /// <summary>Generates one sequence.</summary>
    /// <returns>Updates in order; the last one carries <see cref="GenerationUpdate.Finished"/>.</returns>
    /// <exception cref="InvalidInputException">The request cannot run (a bad id, too long for the model).</exception>
    /// <exception cref="EngineUnavailableException">No device serves the model now.</exception>
    /// <exception cref="OperationCanceledException">The caller cancelled.</exception>
    IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, CancellationToken cancellation = default);
}

/// <summary>No device serves the model now (none yet, or all lost): the request may succeed later (HTTP 503).</summary>
public sealed class EngineUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The engine's waiting queue is full: the request may succeed later (HTTP 429, vLLM's and OpenAI's "too many requests").</summary>
public sealed class EngineOverloadedException(string message) : Exception(message);
