using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Host.Cluster;

namespace DistributedInference.Host.Tests;

/// <summary>
/// A client member of a <see cref="LocalCluster"/> inside the test process (127.0.0.1, any port): it asks the cluster
/// itself (a job's status, answered by the job's home through the job region's proxy) what a test would otherwise
/// read from the nodes' logs. Leaves the cluster when disposed.
/// </summary>
public sealed class ClusterMember : IAsyncDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(1);

    private readonly ActorSystem _system;
    private readonly TestKit _kit;
    private readonly IActorRef _jobs;

    private ClusterMember(ActorSystem system)
    {
        _system = system;
        _kit = new TestKit(system);
        _jobs = JobSharding.StartProxy(system);
    }

    /// <summary>Joins the nodes' cluster with the client role, as <c>di infer --join</c> does.</summary>
    public static async Task<ClusterMember> JoinAsync(LocalCluster nodes)
    {
        var system = ClusterNode.Start(new NodeOptions("127.0.0.1", 0, [nodes.Seed], [ClusterNode.ClientRole], "cpu", null, "gpt2-tiny", Models.Tasks.InferenceTask.Logits, Models.Runtime.Precision.Fp32, 1, 0, null));
        await ClusterJoin.WhenUpAsync(system, [nodes.Seed], Wait);
        return new ClusterMember(system);
    }

    /// <summary>The job's status once it is <paramref name="state"/>; fails after a minute with the last status seen.</summary>
    public async Task<JobStatus> JobReaches(string jobId, JobState state)
    {
        JobStatus? status = null;
        await _kit.AwaitAssertAsync(
            async () =>
            {
                status = await _jobs.Ask<JobStatus>(new GetJobStatus(jobId), TimeSpan.FromSeconds(10));
                Assert.True(status.State == state, $"job {jobId}: {status}");
            },
            Wait,
            TimeSpan.FromMilliseconds(200));
        return status!;
    }

    public async ValueTask DisposeAsync()
    {
        await ClusterInference.LeaveAsync(_system);
        _kit.Dispose();
    }
}
