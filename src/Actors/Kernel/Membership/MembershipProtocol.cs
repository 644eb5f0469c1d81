using DistributedInference.Actors.Kernel.Wire;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>The wire format of the join-time proof of the cluster secret (<see cref="MembershipGate"/>).</summary>
public sealed class MembershipProtocol : WireProtocol
{
    public override void Register(WireRegistry registry) => registry
        .Add<MemberChallenge>("member-challenge", (w, m) => w.String(m.Nonce), r => new MemberChallenge(r.String()))
        .Add<MemberProof>("member-proof", (w, m) => { w.String(m.ChallengeNonce); w.String(m.Nonce); w.String(m.Proof); }, r => new MemberProof(r.String(), r.String(), r.String()))
        .Add<MemberAccepted>("member-accepted", (w, m) => { w.String(m.ChallengeNonce); w.String(m.Proof); }, r => new MemberAccepted(r.String(), r.String()))
        .Add<MemberRefused>("member-refused", (w, m) => w.String(m.Reason), r => new MemberRefused(r.String()));
}
