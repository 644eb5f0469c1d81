using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Telemetry;
using DistributedInference.Models;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Serving;

/// <summary>
/// An <see cref="IGenerationEngine"/> over a cluster's <see cref="GenerationHost"/>s: each request goes to one node
/// (a <see cref="TokenBalancer{TKey}"/>: power of two choices on this server's outstanding tokens, prefix affinity on
/// ties) and its tokens stream back as that node's engine chooses them. If the node is lost (its host stops, its member
/// is removed), fails the request or is overloaded, the request runs again on another node from its prompt, and the
/// tokens already streamed are skipped: greedy and seeded sequences are regenerated token for token (the engines are
/// batch invariant), so the stream goes on where it was, and a whole response equals one that never moved. A
/// regenerated token that differs from the one already sent (half precision is not batch invariant) is counted
/// (<c>di.serve.sequences.diverged</c>) and logged; the stream goes on with the new node's tokens. Cancelling stops the
/// sequence on its node at the engine's next iteration.
/// </summary>
public sealed class ClusterGenerationEngine : IGenerationEngine
{
    private static readonly Counter<long> Resumed = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "serve.sequences.resumed", "{sequence}", "Sequences that went on on another node after theirs was lost or refused them.");

    private static readonly Counter<long> Diverged = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "serve.sequences.diverged", "{sequence}", "Resumed sequences whose regenerated tokens differed from those already sent.");

    private readonly ActorSystem _system;
    private readonly GenerationHosts _hosts;
    private readonly ModelIdentity _model;
    private readonly TokenBalancer<IActorRef> _balancer;
    private readonly ILoggingAdapter _log;

    /// <param name="system">The server's actor system, a member of the cluster.</param>
    /// <param name="hosts">The hosts that generate with <paramref name="model"/>.</param>
    /// <param name="model">The model every request is for.</param>
    /// <param name="random">The balancer's draw (a seeded one in tests).</param>
    public ClusterGenerationEngine(ActorSystem system, GenerationHosts hosts, ModelIdentity model, Random? random = null)
    {
        _system = system;
        _hosts = hosts;
        _model = model;
        _balancer = new TokenBalancer<IActorRef>(random);
        _log = Logging.GetLogger(system, typeof(ClusterGenerationEngine));
    }

    /// <summary>How long a lost node's last answers are still taken after Akka says it stopped.</summary>
    public TimeSpan LostGrace { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Outstanding tokens this server has on <paramref name="host"/>.</summary>
    public long Outstanding(IActorRef host) => _balancer.Outstanding(host);

    /// <exception cref="InvalidInputException">A node refused the request as impossible (a bad id, longer than its cache).</exception>
    /// <exception cref="EngineUnavailableException">No node serves the model, or every one that could was lost or failed it.</exception>
    /// <exception cref="EngineOverloadedException">Every node that could take it has a full waiting queue.</exception>
    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        request.Sampling.Validate();
        var sent = new List<GeneratedToken>();
        var tried = new HashSet<IActorRef>();
        var overloaded = false;
        string? lastFailure = null;
        while (true)
        {
            var candidates = _hosts.Current.Where(h => !tried.Contains(h.Actor)).Select(h => h.Actor).ToList();
            if (candidates.Count == 0)
            {
                var why = lastFailure ?? _hosts.Unavailable ?? "every node serving the model was tried";
                throw overloaded && lastFailure is null
                    ? new EngineOverloadedException($"every node serving {_model.Name} has a full queue; try again later")
                    : new EngineUnavailableException(tried.Count == 0 ? $"no node serves {_model.Name}: {why}" : $"the request failed on every node that tried it: {why}");
            }

            var host = _balancer.Choose(candidates, request.PromptTokenIds);
            tried.Add(host);
            if (sent.Count > 0)
            {
                Resumed.Add(1);
                _log.Info("Request {0} goes on on {1} from its token {2}", request.RequestId, host.Path.Address, sent.Count);
            }

            var policy = new RequestPolicy { Watch = RequestWatch.Target, CancelMessage = new CancelSequence(request.RequestId), LostGrace = LostGrace };
            var attempt = new Attempt(sent);
            using (var lease = _balancer.Start(host, request))
            {
                await using var call = Request.Start(_system, host, me => new GenerateSequence(request, _model, me), policy, cancellation);
                await foreach (var answer in call.ReadAllAsync(cancellation))
                {
                    if (answer is SequenceTokens tokens)
                    {
                        lease.Generated(tokens.Tokens.Count);
                        var fresh = attempt.Take(tokens.Tokens);
                        if (attempt.DivergedNow())
                        {
                            Diverged.Add(1);
                            _log.Warning("Request {0}: the tokens regenerated on {1} differ from those already sent (not batch invariant: half precision?); the stream goes on with the new ones", request.RequestId, host.Path.Address);
                        }

                        if (fresh.Count > 0 || tokens.Finished is not null)
                        {
                            yield return new GenerationUpdate(fresh, tokens.Finished);
                        }

                        if (tokens.Finished is not null)
                        {
                            yield break;
                        }

                        continue;
                    }

                    attempt.End(answer);
                    break;
                }
            }

            switch (attempt.Outcome)
            {
                case SequenceFailed { Reason: SequenceFailure.Invalid } invalid:
                    throw new InvalidInputException(invalid.Message);
                case SequenceFailed { Reason: SequenceFailure.Overloaded } full:
                    overloaded = true;
                    _log.Info("Request {0}: {1} is full ({2}); trying another node", request.RequestId, host.Path.Address, full.Message);
                    break;
                case SequenceFailed failed:
                    lastFailure = failed.Message;
                    _log.Warning("Request {0} failed on {1} after {2} token(s): {3}; trying another node", request.RequestId, host.Path.Address, sent.Count, failed.Message);
                    break;
                case RequestCancelled:
                    throw new OperationCanceledException(cancellation);
                case null when cancellation.IsCancellationRequested:
                    throw new OperationCanceledException(cancellation);
                default:
                    lastFailure = $"node {host.Path.Address} was lost";
                    _log.Warning("Request {0}: node {1} was lost after {2} token(s) were sent; trying another node", request.RequestId, host.Path.Address, sent.Count);
                    break;
            }
        }
    }

    // One node's try at a request: its tokens, the first ones (already sent by an earlier try) skipped and compared.
    private sealed class Attempt(List<GeneratedToken> sent)
    {
        private int _received;
        private bool _diverged;
        private bool _reported;

        public object? Outcome { get; private set; }

        public List<GeneratedToken> Take(IReadOnlyList<GeneratedToken> tokens)
        {
            var fresh = new List<GeneratedToken>();
            foreach (var token in tokens)
            {
                if (_received < sent.Count)
                {
                    _diverged |= sent[_received].TokenId != token.TokenId;
                }
                else
                {
                    sent.Add(token);
                    fresh.Add(token);
                }

                _received++;
            }

            return fresh;
        }

        public void End(object outcome) => Outcome = outcome;

        // True once, when a regenerated token first differed from the one sent before.
        public bool DivergedNow()
        {
            var now = _diverged && !_reported;
            _reported |= _diverged;
            return now;
        }
    }
}
