using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>An older member asks a newer one to prove the cluster secret (<paramref name="Nonce"/>: 32 random bytes, base64).</summary>
public sealed record MemberChallenge(string Nonce) : IWireMessage;

/// <summary>The newer member's answer: the challenge it answers, its own nonce, and its HMAC proof (base64).</summary>
public sealed record MemberProof(string ChallengeNonce, string Nonce, string Proof) : IWireMessage;

/// <summary>The older member accepted the proof and proves the secret in turn (HMAC, base64).</summary>
public sealed record MemberAccepted(string ChallengeNonce, string Proof) : IWireMessage;

/// <summary>The older member refused the newer one (its proof was wrong or missing) and is downing it.</summary>
public sealed record MemberRefused(string Reason) : IWireMessage;

/// <summary>
/// Akka's own join, authenticated by the cluster secret: Akka.Remote admits any node that reaches its port (without
/// TLS), so every admitted member challenges each member younger than itself (Joining, WeaklyUp, or Up later) as soon
/// as it sees it, with the data plane's HMAC-SHA256 challenge-response over Akka messages, the newer member proving first.
/// A member whose proof is wrong, or that gives none within the timeout
/// (<c>distributed-inference.security.join-proof-timeout</c>, 20 s by default), is told so and downed.
/// <see cref="Admitted"/> completes for this node once an older member has accepted its proof and proved the secret
/// in turn (at once for the oldest member), and fails with one line when the cluster refuses it.
/// </summary>
public sealed class MembershipGate
{
    /// <summary>The gate actor's name, under <c>/system</c> on every node.</summary>
    public const string ActorName = "membership-gate";

    private static readonly ConditionalWeakTable<ActorSystem, MembershipGate> Gates = new();
    private readonly TaskCompletionSource _admitted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _refused;

    private MembershipGate()
    {
    }

    /// <summary>Completes when this node is admitted; faults with <see cref="InvalidInputException"/> when it is refused.</summary>
    public Task Admitted => _admitted.Task;

    /// <summary>Members this node challenged and downed so far (wrong or missing proof).</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>Starts the gate of <paramref name="system"/> (a cluster node), once.</summary>
    /// <exception cref="InvalidInputException">The security settings are invalid (<see cref="ClusterSecurity.From"/>).</exception>
    public static MembershipGate Start(ActorSystem system)
    {
        var security = ClusterSecurity.From(system.Settings.Config);
        var timeout = system.Settings.Config.GetTimeSpan("distributed-inference.security.join-proof-timeout", TimeSpan.FromSeconds(20));
        var gate = Gates.GetValue(system, _ => new MembershipGate());
        ((ExtendedActorSystem)system).SystemActorOf(Props.Create(() => new MembershipGateActor(gate, security.Secret, timeout)), ActorName);
        return gate;
    }

    /// <summary>The gate of <paramref name="system"/>, or null when none was started.</summary>
    public static MembershipGate? For(ActorSystem system) => Gates.TryGetValue(system, out var gate) ? gate : null;

    internal void Admit() => _admitted.TrySetResult();

    internal void Refuse(string reason) => _admitted.TrySetException(new InvalidInputException(reason));

    internal void Downed() => Interlocked.Increment(ref _refused);
}

/// <summary>The actor behind <see cref="MembershipGate"/>: challenges younger members, answers older ones.</summary>
internal sealed class MembershipGateActor : ReceiveActor, IWithTimers
{
    private static readonly byte[] NewcomerLabel = "distributed-inference join newcomer v1"u8.ToArray();
    private static readonly byte[] MemberLabel = "distributed-inference join member v1"u8.ToArray();
    private readonly MembershipGate _gate;
    private readonly byte[] _secret;
    private readonly TimeSpan _timeout;
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<Address, (byte[] Nonce, DateTime Deadline)> _challenges = new();
    private readonly HashSet<Address> _verified = new();
    private readonly Dictionary<Address, (byte[] Transcript, MemberProof Proof)> _answered = new();
    private bool _admitted;

    public MembershipGateActor(MembershipGate gate, byte[] secret, TimeSpan timeout)
    {
        _gate = gate;
        _secret = secret;
        _timeout = timeout;
        Receive<ClusterEvent.IMemberEvent>(e =>
        {
            // A member gone for good is forgotten: a new process at the same address (a node restarted on its port) must prove itself again.
            if (e is ClusterEvent.MemberRemoved removed)
            {
                _verified.Remove(removed.Member.Address);
                _challenges.Remove(removed.Member.Address);
                _answered.Remove(removed.Member.Address);
            }

            Review();
        });
        Receive<Tick>(_ => Retry());
        Receive<MemberChallenge>(Answer);
        Receive<MemberProof>(Check);
        Receive<MemberAccepted>(Accepted);
        Receive<MemberRefused>(refused =>
        {
            if (!_admitted && IsUpMember(Sender.Path.Address))
            {
                _gate.Refuse(_secret.Length == 0
                    ? $"the cluster refused this node: the cluster has a secret and this node has none (give it the cluster's secret with --secret-file or {ClusterSecurity.SecretVariable})"
                    : $"the cluster refused this node: {refused.Reason} (is --secret-file or {ClusterSecurity.SecretVariable} the cluster's secret?)");
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));
        Timers.StartPeriodicTimer("retry", Tick.Instance, TimeSpan.FromSeconds(1));
    }

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private static string Base64(byte[] bytes) => Convert.ToBase64String(bytes);

    private static byte[]? FromBase64(string text)
    {
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static byte[] Transcript(byte[] challengeNonce, byte[] nonce, Address challenger, Address newcomer) =>
        [.. challengeNonce, .. nonce, .. Encoding.UTF8.GetBytes($"{challenger}\n{newcomer}")];

    private static ActorSelection GateOf(Address address) =>
        Context.ActorSelection(new RootActorPath(address) / "system" / MembershipGate.ActorName);

    private bool IsUpMember(Address address) => _cluster.State.Members.Any(m => m.Address.Equals(address) && m.Status == MemberStatus.Up);

    // Admits this one when it is the oldest; once admitted (and Up), challenges every member younger than this one.
    private void Review()
    {
        var members = _cluster.State.Members;
        var self = members.FirstOrDefault(m => m.Address.Equals(_cluster.SelfAddress));
        if (self is null || self.Status != MemberStatus.Up)
        {
            return;
        }

        if (!_admitted && !members.Any(m => !m.Address.Equals(self.Address) && m.Status == MemberStatus.Up && m.IsOlderThan(self)))
        {
            _admitted = true;
            _gate.Admit();
        }

        // Only an admitted member judges others: a node with another secret would find every honest proof wrong and down the member.
        if (!_admitted)
        {
            return;
        }

        foreach (var member in members)
        {
            var younger = member.Status is MemberStatus.Joining or MemberStatus.WeaklyUp || (member.Status == MemberStatus.Up && self.IsOlderThan(member));
            if (!member.Address.Equals(self.Address) && younger && !_verified.Contains(member.Address) && !_challenges.ContainsKey(member.Address))
            {
                var nonce = RandomNumberGenerator.GetBytes(32);
                _challenges[member.Address] = (nonce, DateTime.UtcNow + _timeout);
                GateOf(member.Address).Tell(new MemberChallenge(Base64(nonce)), Self);
            }
        }
    }

    // Challenges again those that have not answered yet (their gate may not have been started), and downs those out of time.
    private void Retry()
    {
        var present = _cluster.State.Members.Where(m => m.Status != MemberStatus.Down).Select(m => m.Address).ToHashSet();
        foreach (var (address, (nonce, deadline)) in _challenges.ToList())
        {
            if (!present.Contains(address))
            {
                _challenges.Remove(address);
            }
            else if (DateTime.UtcNow > deadline)
            {
                Refuse(address, $"no proof of the cluster secret within {_timeout.TotalSeconds:0.#} s");
            }
            else
            {
                GateOf(address).Tell(new MemberChallenge(Base64(nonce)), Self);
            }
        }

        Review();
    }

    // A newer member proves itself to an older, Up member that challenged it: the challenger's proof comes only after.
    private void Answer(MemberChallenge challenge)
    {
        var challenger = Sender.Path.Address;
        var challengeNonce = FromBase64(challenge.Nonce);
        if (challengeNonce is not { Length: 32 } || !IsUpMember(challenger))
        {
            return;
        }

        // A challenge repeated (its answer was still on its way) gets the same answer, so the acceptance matches it.
        if (!_answered.TryGetValue(challenger, out var answered) || answered.Proof.ChallengeNonce != challenge.Nonce)
        {
            var nonce = RandomNumberGenerator.GetBytes(32);
            var transcript = Transcript(challengeNonce, nonce, challenger, _cluster.SelfAddress);
            answered = (transcript, new MemberProof(challenge.Nonce, Base64(nonce), Base64(Proof(NewcomerLabel, transcript))));
            _answered[challenger] = answered;
        }

        Sender.Tell(answered.Proof, Self);
    }

    private void Check(MemberProof proof)
    {
        var newcomer = Sender.Path.Address;
        if (!_challenges.TryGetValue(newcomer, out var pending) || proof.ChallengeNonce != Base64(pending.Nonce))
        {
            return;
        }

        var nonce = FromBase64(proof.Nonce);
        var given = FromBase64(proof.Proof);
        var transcript = Transcript(pending.Nonce, nonce ?? [], _cluster.SelfAddress, newcomer);
        if (nonce is not { Length: 32 } || given is null || !CryptographicOperations.FixedTimeEquals(given, Proof(NewcomerLabel, transcript)))
        {
            Refuse(newcomer, "its proof of the cluster secret is wrong");
            return;
        }

        _challenges.Remove(newcomer);
        _verified.Add(newcomer);
        Sender.Tell(new MemberAccepted(proof.ChallengeNonce, Base64(Proof(MemberLabel, transcript))), Self);
    }

    private void Accepted(MemberAccepted accepted)
    {
        var challenger = Sender.Path.Address;
        if (_admitted || !_answered.TryGetValue(challenger, out var answered) || accepted.ChallengeNonce != answered.Proof.ChallengeNonce)
        {
            return;
        }

        var given = FromBase64(accepted.Proof);
        if (given is null || !CryptographicOperations.FixedTimeEquals(given, Proof(MemberLabel, answered.Transcript)))
        {
            _gate.Refuse(_secret.Length == 0
                ? $"the member {challenger} has a cluster secret and this node has none (give this node the cluster's secret with --secret-file or {ClusterSecurity.SecretVariable})"
                : $"the member {challenger} does not know this node's cluster secret (is --secret-file or {ClusterSecurity.SecretVariable} the cluster's secret?)");
            return;
        }

        _admitted = true;
        _gate.Admit();
    }

    private void Refuse(Address member, string reason)
    {
        _challenges.Remove(member);
        _log.Warning("membership: {0} refused and downed: {1}", member, reason);
        GateOf(member).Tell(new MemberRefused(reason), Self);
        _cluster.Down(member);
        _gate.Downed();
    }

    private byte[] Proof(byte[] label, byte[] transcript) => Kernel.Transport.DataPlaneHandshake.Proof(_secret, label, transcript);

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}
