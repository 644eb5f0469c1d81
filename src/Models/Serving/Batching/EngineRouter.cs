using System.Runtime.CompilerServices;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// Spreads requests over several engines, one per device (Ray Serve's power-of-two-choices request router): two
/// engines drawn at random, the one with fewer outstanding tokens wins (prompt tokens plus tokens still to generate, of
/// the requests this router sent it); on a tie, the engine that last served a prompt starting with the same tokens (its
/// prefix cache likely holds them). Failure mode: the counts are this router's own, so an engine also fed by someone
/// else looks idler than it is; an engine that fails a request fails it (no retry here).
/// Owns its engines: disposing the router disposes them.
/// </summary>
public sealed class EngineRouter : IGenerationEngine, IDisposable
{
    private const int AffinityTokens = 16;
    private const int AffinityEntries = 4096;
    private readonly IReadOnlyList<IGenerationEngine> _engines;
    private readonly long[] _outstanding;
    private readonly Dictionary<UInt128, int> _affinity = [];
    private readonly Random _random;

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
        _outstanding = new long[engines.Count];
        _random = random ?? Random.Shared;
    }

    /// <summary>The engines, in the order given.</summary>
    public IReadOnlyList<IGenerationEngine> Engines => _engines;

    /// <summary>Outstanding tokens of engine <paramref name="index"/>, as this router counts them.</summary>
    public long Outstanding(int index) => Interlocked.Read(ref _outstanding[index]);

    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var index = Choose(request);
        var (prompt, output) = ((long)request.PromptTokenIds.Count, (long)request.Sampling.MaxTokens);
        Interlocked.Add(ref _outstanding[index], prompt + output);
        try
        {
            await foreach (var update in _engines[index].GenerateAsync(request, cancellation))
            {
                var generated = Math.Min(update.Tokens.Count, output);
                Interlocked.Add(ref _outstanding[index], -(prompt + generated));
                (prompt, output) = (0, output - generated);
                yield return update;
            }
        }
        finally
        {
            Interlocked.Add(ref _outstanding[index], -(prompt + output));
        }
    }

    /// <summary>The engine <paramref name="request"/> goes to.</summary>
    public int Choose(GenerationRequest request)
    {
        if (_engines.Count == 1)
        {
            return 0;
        }

        var key = Prefix(request.PromptTokenIds);
        int chosen;
        lock (_affinity)
        {
            var first = _random.Next(_engines.Count);
            var second = (first + 1 + _random.Next(_engines.Count - 1)) % _engines.Count;
            var (a, b) = (Outstanding(first), Outstanding(second));
            chosen = a != b ? (a < b ? first : second)
                : _affinity.TryGetValue(key, out var warm) && (warm == first || warm == second) ? warm
                : first;
            if (_affinity.Count >= AffinityEntries)
            {
                _affinity.Clear();
            }

            _affinity[key] = chosen;
        }

        return chosen;
    }

    public void Dispose()
    {
        foreach (var engine in _engines)
        {
            (engine as IDisposable)?.Dispose();
        }
    }

    private static UInt128 Prefix(IReadOnlyList<long> tokens)
    {
        var hash = BlockHash.Chain(tokens, Math.Min(AffinityTokens, tokens.Count), 1);
        return hash[0].Value;
    }
}
