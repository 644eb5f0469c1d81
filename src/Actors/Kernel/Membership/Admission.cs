namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>What an actor that takes messages from other nodes does with one (<see cref="ClusterMembership.Judge"/>).</summary>
public enum Admission
{
    /// <summary>Handle it: its sender is this node or a member, or it is a death-watch notice or a receive timeout.</summary>
    Admit,

    /// <summary>Keep it until its sender's address is a member in this node's view, or drop it when it never becomes one.</summary>
    Hold,

    /// <summary>Drop it: no sender where one is required, or a sender that left the cluster.</summary>
    Drop,
}
