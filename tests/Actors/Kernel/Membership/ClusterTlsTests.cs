using Akka.Actor;
using Akka.Configuration;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Membership;

/// <summary>
/// Akka.Remote and the data plane with mutual TLS on 127.0.0.1, from a self-signed certificate made in-process: nodes
/// holding the same certificate form a cluster and move tensors; a node with another certificate, or without TLS,
/// cannot join.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterTlsTests : IDisposable
{
    private static readonly TimeSpan JoinWait = TimeSpan.FromSeconds(8);
    private readonly string _folder = Directory.CreateTempSubdirectory("di-tls-").FullName;

    public ClusterTlsTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Certificate(string name)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllBytes(path, ClusterSecurity.NewSelfSignedCertificate("pw", TimeSpan.FromDays(1)));
        return path;
    }

    private static ActorSystem Node(string? certificate)
    {
        var node = ClusterSecurity.CreateSystem(
            "distributed-inference",
            ConfigurationFactory.ParseString(certificate is null ? string.Empty : $"distributed-inference.security.tls {{ certificate = \"{certificate}\", password = pw }}")
                .WithFallback(DistributedInferenceConfig.Cluster("127.0.0.1", 0, ["client"])));
        TensorDataPlane.For(node);
        return node;
    }

    private static async Task<bool> Joins(ActorSystem node, Address seed, TimeSpan wait)
    {
        var up = new TaskCompletionSource();
        Akka.Cluster.Cluster.Get(node).RegisterOnMemberUp(() => up.TrySetResult());
        Akka.Cluster.Cluster.Get(node).Join(seed);
        return await Task.WhenAny(up.Task, Task.Delay(wait)) == up.Task;
    }

    [Fact]
    public async Task Nodes_with_the_same_certificate_form_a_cluster_and_others_cannot_join()
    {
        var cluster = Certificate("cluster.pfx");
        var other = Certificate("other.pfx");
        var seed = Node(cluster);
        var peer = Node(cluster);
        var stranger = Node(other);
        var plain = Node(null);
        try
        {
            var address = Akka.Cluster.Cluster.Get(seed).SelfAddress;
            Assert.True(await Joins(seed, address, TimeSpan.FromSeconds(20)), "the seed did not come up with TLS");
            Assert.True(await Joins(peer, address, TimeSpan.FromSeconds(20)), "a node with the cluster certificate could not join");

            // Tensors cross on the data plane, over TLS too.
            var inbox = Inbox.Create(peer);
            var target = await seed.ActorSelection(inbox.Receiver.Path.ToStringWithAddress(Akka.Cluster.Cluster.Get(peer).SelfAddress)).ResolveOne(TimeSpan.FromSeconds(10));
            TensorDataPlane.For(seed)!.Send(target, new MicroBatch("job", 2, ones(3)));
            Assert.Equal(2, Assert.IsType<MicroBatch>(await inbox.ReceiveAsync(TimeSpan.FromSeconds(20))).Index);
            Assert.Equal(1, TensorDataPlane.For(peer)!.FramesReceived);

            Assert.False(await Joins(stranger, address, JoinWait), "a node with another certificate joined");
            Assert.False(await Joins(plain, address, JoinWait), "a node without TLS joined");
            Assert.Equal(2, Akka.Cluster.Cluster.Get(seed).State.Members.Count);
        }
        finally
        {
            await Task.WhenAll(new[] { seed, peer, stranger, plain }.Select(s => s.Terminate()));
        }
    }
}
