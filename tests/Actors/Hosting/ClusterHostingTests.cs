using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Hosting;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Tests.Cluster;
using DistributedInference.Models;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Hosting;

/// <summary>Two host apps whose actor systems are nodes of one cluster; each submits jobs that use both nodes' devices.</summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterHostingTests : TestKit
{
    public ClusterHostingTests() => LibTorch.Initialize();

    private static ReplicaModelFactory Model() => Gpt2Replica.Factory(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits, ScalarType.Float32, 0);

    private static async Task<IHost> Start(Action<ClusterNodeSetup> configure)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInferenceNode(configure);
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    [Fact]
    public async Task Host_apps_join_one_cluster_and_their_jobs_use_every_nodes_devices()
    {
        using var first = await Start(setup => setup.OnDevices("cpu").ServingReplicas(Model()));
        var seed = Akka.Cluster.Cluster.Get(first.Services.GetRequiredService<ActorSystem>()).SelfAddress;
        using var second = await Start(setup => setup.WithRoles(DeviceManager.Role).Join($"{seed.Host}:{seed.Port}").OnDevices("cpu").ServingReplicas(Model()));
        try
        {
            var control = first.Services.GetRequiredService<ActorSystem>().ActorSelection($"/user/{ReplicaSplitter.ActorName}");
            await InProcessCluster.DevicesRegistered(this, control, 2);

            // From the node without the control role: through the proxy to a coordinator on the first node.
            var ids = cat([Fixtures.Expected("input_ids"), Fixtures.Expected("input_ids")], 0);
            var result = await second.Services.GetRequiredService<ReplicaClient>().RunAsync(Gpt2Replica.Rows(ids, null), new JobOptions(MaxBatchSize: 1));
            Assert.True(Fixtures.MaxAbsDiff((Tensor)result.Results!, cat([Fixtures.Expected("lm_logits"), Fixtures.Expected("lm_logits")], 0)) <= 1e-4);
            Assert.Equal(2, result.Statistics.Devices.Count(d => d.Value.Rows > 0));
        }
        finally
        {
            await second.StopAsync();
            await first.StopAsync();
        }
    }

    [Fact]
    public void A_device_node_without_devices_or_model_is_refused_before_it_starts()
    {
        var builder = Host.CreateApplicationBuilder();
        var error = Assert.Throws<InvalidInputException>(() => builder.Services.AddDistributedInferenceNode(setup => setup.OnDevices("cpu")));
        Assert.Contains("needs devices (OnDevices) and a model to serve", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Host_app_nodes_run_akka_and_the_data_plane_over_tls_like_di_node_and_a_node_without_the_certificate_cannot_join()
    {
        var folder = Directory.CreateTempSubdirectory("di-hosting-tls-").FullName;
        try
        {
            var certificate = Path.Combine(folder, "cluster.pfx");
            File.WriteAllBytes(certificate, DistributedInference.Actors.Kernel.Membership.ClusterSecurity.NewSelfSignedCertificate("pw", TimeSpan.FromDays(1)));
            using var first = await Start(setup => setup.WithTls(certificate, "pw").OnDevices("cpu").ServingReplicas(Model()));
            var firstSystem = first.Services.GetRequiredService<ActorSystem>();
            var seed = Akka.Cluster.Cluster.Get(firstSystem).SelfAddress;
            Assert.Equal("akka.ssl.tcp", seed.Protocol);
            using var second = await Start(setup => setup.WithTls(certificate, "pw").WithRoles(DeviceManager.Role).Join($"{seed.Host}:{seed.Port}").OnDevices("cpu").ServingReplicas(Model()));
            try
            {
                await InProcessCluster.DevicesRegistered(this, firstSystem.ActorSelection($"/user/{ReplicaSplitter.ActorName}"), 2);
                var ids = cat([Fixtures.Expected("input_ids"), Fixtures.Expected("input_ids")], 0);
                var result = await second.Services.GetRequiredService<ReplicaClient>().RunAsync(Gpt2Replica.Rows(ids, null), new JobOptions(MaxBatchSize: 1));
                Assert.True(Fixtures.MaxAbsDiff((Tensor)result.Results!, cat([Fixtures.Expected("lm_logits"), Fixtures.Expected("lm_logits")], 0)) <= 1e-4);
                Assert.Equal(2, result.Statistics.Devices.Count(d => d.Value.Rows > 0));

                // A node without the certificate: its joins never make it a member.
                using var plain = await Start(setup => setup.WithRoles("client").Join($"{seed.Host}:{seed.Port}"));
                var plainCluster = Akka.Cluster.Cluster.Get(plain.Services.GetRequiredService<ActorSystem>());
                await Task.Delay(TimeSpan.FromSeconds(3));
                Assert.DoesNotContain(Akka.Cluster.Cluster.Get(firstSystem).State.Members, m => m.Address.Equals(plainCluster.SelfAddress));
                await plain.StopAsync();
            }
            finally
            {
                await second.StopAsync();
                await first.StopAsync();
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
