using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Settings;
using static DistributedInference.Actors.Kernel.Settings.ClusterLogNoise;

namespace DistributedInference.Actors.Tests.Kernel.Settings;

public sealed class ClusterLogNoiseTests
{
    private static readonly Address Self = Address.Parse("akka.tcp://distributed-inference@127.0.0.1:4053");
    private const string Client = "akka.tcp://distributed-inference@127.0.0.1:37447";
    private const string Node = "akka.tcp://distributed-inference@127.0.0.1:4054";
    private const string Remoting = "remoting (akka://distributed-inference)";

    private static Func<Address, Peer> Peers(Peer node) => address => address.ToString() == Node ? node : Peer.Departed;

    [Fact]
    public void A_connection_closed_by_its_other_end_is_information_in_one_line()
    {
        var warning = new Warning("akka.tcp://distributed-inference@127.0.0.1:4053/system/endpointManager/reliableEndpointWriter-1", typeof(object),
            $"Association with remote system {Client} has failed; address is now gated for 5000 ms. Reason is: [Akka.Remote.EndpointDisassociatedException: Disassociated\n   at Akka.Remote.EndpointWriter.PublishAndThrow(Exception reason)\n]");
        var (level, text) = Classify(warning, Self, Peers(Peer.Active));
        Assert.Equal(LogLevel.InfoLevel, level);
        Assert.Equal($"Association with remote system {Client} has failed; address is now gated for 5000 ms. Reason is: [Akka.Remote.EndpointDisassociatedException: Disassociated", text);
    }

    [Theory]
    [InlineData(Client, Peer.Active, LogLevel.InfoLevel)]
    [InlineData(Node, Peer.Unreachable, LogLevel.InfoLevel)]
    [InlineData(Node, Peer.Active, LogLevel.WarningLevel)]
    public void Remoting_trouble_with_departed_or_known_unreachable_nodes_is_information(string address, Peer node, LogLevel expected)
    {
        var warning = new Warning(Remoting, typeof(object), $"Tried to associate with unreachable remote address [{address}]. Address is now gated for 5000 ms. Reason: [Connection refused]");
        Assert.Equal(expected, Classify(warning, Self, Peers(node)).Level);
    }

    [Fact]
    public void The_cluster_marking_a_member_unreachable_stays_a_warning_and_nothing_is_lowered_before_this_node_is_a_member()
    {
        var marking = new Warning($"{Self}/system/cluster/core/daemon", typeof(object), $"Cluster Node [{Self}] - Marking node(s) as UNREACHABLE [Member(address = {Node}, status = Up)]");
        Assert.Equal(LogLevel.WarningLevel, Classify(marking, Self, Peers(Peer.Unreachable)).Level);
        var joining = new Warning(Remoting, typeof(object), $"Tried to associate with unreachable remote address [{Node}]. Reason: [Connection refused]");
        Assert.Equal(LogLevel.WarningLevel, Classify(joining, Self, null).Level);
    }

    [Fact]
    public void A_sharding_proxy_asking_again_for_shard_homes_during_a_recovery_is_information()
    {
        var retry = new Warning($"{Self}/system/sharding/jobsProxy", typeof(object),
            $"jobs: Requested shard homes [40] from coordinator at [[{Node}/system/sharding/jobsCoordinator/singleton/coordinator#1]]. [1] total buffered messages.");
        Assert.Equal(LogLevel.InfoLevel, Classify(retry, Self, Peers(Peer.Active)).Level);
    }

    [Fact]
    public void An_error_keeps_its_level_and_its_cause_without_a_stack_trace()
    {
        var error = new Error(new InvalidOperationException("broken\n   at Somewhere()"), "akka://x/user/a", typeof(object), "it failed");
        Assert.Equal((LogLevel.ErrorLevel, "it failed (InvalidOperationException: broken)"), Classify(error, Self, Peers(Peer.Active)));
    }

    [Fact]
    public void The_quarantine_of_a_removed_member_this_node_made_itself_is_information_even_while_it_leaves()
    {
        var quarantined = new Warning(Remoting, typeof(object),
            $"Association to [{Client}] having UID [1935099144] is irrecoverably failed. UID is now quarantined and all messages to this UID will be delivered to dead letters. Remote actorsystem must be restarted to recover from this situation.");
        Assert.Equal(LogLevel.InfoLevel, Classify(quarantined, Self, null, address => address.ToString() == Client).Level);
        Assert.Equal(LogLevel.WarningLevel, Classify(quarantined, Self, null, _ => false).Level);
        Assert.Equal(LogLevel.WarningLevel, Classify(quarantined, Self, null).Level);
    }
}
