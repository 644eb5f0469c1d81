using System.Runtime.CompilerServices;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// Spreads requests over several engines, one per device, with a <see cref="TokenBalancer{TKey}"/> (power of two
/// choices on outstanding tokens, prefix affinity on ties). An engine that fails a request fails it (no retry here).
/// Owns its engines: disposing the router disposes them.
/// </summary>
public sealed class EngineRouter : IGenerationEngine, IDisposable
{
    private readonly IReadOnlyList<IGenerationEngine> _engines;
    private readonly int[] _indices;
    private readonly TokenBalancer<int> _balancer;

    /// <param name="engines">At least one.</param>
    /// <param name="random">The draw (a seeded one in tests).</param>
    /// <exception cref="ArgumentException">No engine.</exception>
    public EngineRouter(IReadOnlyList<IGenerationEngine> engines, Random? random = null)
    {
        if (engines.Count == 0)
        {
            throw new ArgumentException("a router needs at least one engine", nameof(engines));
        }

        _engines = engines;
        _indices = Enumerable.Range(0, engines.Count).ToArray();
        _balancer = new TokenBalancer<int>(random);
    }

    /// <summary>The engines, in the order given.</summary>
    public IReadOnlyList<IGenerationEngine> Engines => _engines;

    /// <summary>Outstanding tokens of engine <paramref name="index"/>, as this router counts them.</summary>
    public long Outstanding(int index) => _balancer.Outstanding(index);

    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var index = Choose(request);
        using var lease = _balancer.Start(index, request);
        await foreach (var update in _engines[index].GenerateAsync(request, cancellation))
        {
            lease.Generated(update.Tokens.Count);
            yield return update;
        }
    }

    /// <summary>The engine <paramref name="request"/> goes to.</summary>
    public int Choose(GenerationRequest request) => _balancer.Choose(_indices, request.PromptTokenIds);

    public void Dispose()
    {
        foreach (var engine in _engines)
        {
            (engine as IDisposable)?.Dispose();
        }
    }
}
