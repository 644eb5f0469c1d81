namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// Ray Serve's power-of-two-choices request router over outstanding tokens: of two candidates drawn at random, the one
/// with fewer outstanding tokens (prompt tokens plus tokens still to generate, of the requests this balancer sent it)
/// wins; on a tie, the one that last got a prompt starting with the same 16 tokens (its prefix cache likely holds them).
/// The counts are this balancer's own: a target also fed by someone else looks idler than it is. Thread-safe.
/// </summary>
/// <typeparam name="TKey">What requests go to (an engine's index, a node's actor).</typeparam>
public sealed class TokenBalancer<TKey>
    where TKey : notnull
{
    private const int AffinityTokens = 16;
    private const int AffinityEntries = 4096;
    private readonly Dictionary<TKey, long> _outstanding = [];
    private readonly Dictionary<UInt128, TKey> _affinity = [];
    private readonly Random _random;

    /// <param name="random">The draw (a seeded one in tests).</param>
    public TokenBalancer(Random? random = null) => _random = random ?? Random.Shared;

    /// <summary>Outstanding tokens of <paramref name="key"/>, as this balancer counts them.</summary>
    public long Outstanding(TKey key)
    {
        lock (_outstanding)
        {
            return _outstanding.GetValueOrDefault(key);
        }
    }

    /// <summary>Where a request with <paramref name="promptTokenIds"/> goes, of <paramref name="candidates"/>.</summary>
    /// <exception cref="ArgumentException">No candidate.</exception>
    public TKey Choose(IReadOnlyList<TKey> candidates, IReadOnlyList<long> promptTokenIds)
    {
        if (candidates.Count == 0)
        {
            throw new ArgumentException("there is no candidate to choose from", nameof(candidates));
        }

        if (candidates.Count == 1)
        {
            return candidates[0];
        }

        var key = promptTokenIds.Count == 0 ? UInt128.Zero : BlockHash.Chain(promptTokenIds, Math.Min(AffinityTokens, promptTokenIds.Count), 1)[0].Value;
        lock (_outstanding)
        {
            var index = _random.Next(candidates.Count);
            var (first, second) = (candidates[index], candidates[(index + 1 + _random.Next(candidates.Count - 1)) % candidates.Count]);
            var (a, b) = (_outstanding.GetValueOrDefault(first), _outstanding.GetValueOrDefault(second));
            var chosen = a != b ? (a < b ? first : second)
                : _affinity.TryGetValue(key, out var warm) && (warm.Equals(first) || warm.Equals(second)) ? warm
                : first;
            if (_affinity.Count >= AffinityEntries)
            {
                _affinity.Clear();
            }

            _affinity[key] = chosen;
            return chosen;
        }
    }

    /// <summary>Counts <paramref name="request"/> on <paramref name="key"/> until the returned lease is disposed.</summary>
    public Lease Start(TKey key, GenerationRequest request)
    {
        var lease = new Lease(this, key, request.PromptTokenIds.Count, request.Sampling.MaxTokens);
        Add(key, lease.Remaining);
        return lease;
    }

    private void Add(TKey key, long tokens)
    {
        lock (_outstanding)
        {
            var left = _outstanding.GetValueOrDefault(key) + tokens;
            if (left == 0)
            {
                _outstanding.Remove(key);
            }
            else
            {
                _outstanding[key] = left;
            }
        }
    }

    /// <summary>One request's tokens on one target: its prompt until the first tokens come, then what is left to generate.</summary>
    public sealed class Lease : IDisposable
    {
        private readonly TokenBalancer<TKey> _owner;
        private readonly TKey _key;
        private long _prompt;
        private long _output;

        internal Lease(TokenBalancer<TKey> owner, TKey key, long prompt, long output) => (_owner, _key, _prompt, _output) = (owner, key, prompt, output);

        internal long Remaining => _prompt + _output;

        /// <summary><paramref name="count"/> more tokens came: the prompt is done, and they are no longer outstanding.</summary>
        public void Generated(int count)
        {
            var done = Math.Min(count, _output);
            _owner.Add(_key, -(_prompt + done));
            (_prompt, _output) = (0, _output - done);
        }

        /// <summary>The request ended: whatever it still counted is no longer outstanding.</summary>
        public void Dispose()
        {
            _owner.Add(_key, -Remaining);
            (_prompt, _output) = (0, 0);
        }
    }
}
