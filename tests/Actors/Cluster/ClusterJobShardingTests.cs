using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>Job coordinators as entities of a shard region on control nodes: any node accepts a job, each job has one home.</summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterJobShardingTests : TestKit, IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly ITestOutputHelper _output;

    // Open unless a test closes it: while closed, every device waits in its forward, so a job cannot end before the
    // test acts on it, however slow or fast the machine.
    private readonly ManualResetEventSlim _devicesMayRun = new(true);
    private InProcessCluster? _cluster;

    public ClusterJobShardingTests(ITestOutputHelper output)
        : base((ActorSystem?)null, output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    public async Task InitializeAsync()
    {
        var model = Gpt2Replica.Factory(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits, ScalarType.Float32, 0);
        _cluster = await InProcessCluster.StartAsync(3, device => new HeldReplica(model(device), _devicesMayRun), control: true);
    }

    public async Task DisposeAsync()
    {
        _devicesMayRun.Set();
        await _cluster!.DisposeAsync();
        _devicesMayRun.Dispose();
    }

    private static object Rows() => Gpt2Replica.Rows(Fixtures.Expected("input_ids"), null);

    // Until every node's splitter knows all three devices.
    private async Task EveryDeviceRegistered()
    {
        foreach (var node in _cluster!.Nodes)
        {
            await InProcessCluster.DevicesRegistered(this, node.ActorSelection($"/user/{ReplicaSplitter.ActorName}"), 3);
        }
    }

    private async Task<long> BatchesRun(ActorSystem node)
    {
        var devices = await node.ActorSelection($"/user/{ReplicaSplitter.ActorName}").Ask<DeviceList>(GetDevices.Instance, Timeout);
        var statuses = await Task.WhenAll(devices.Devices.Select(d => d.Ask<DeviceStatus>(GetDeviceStatus.Instance, Timeout)));
        return statuses.Sum(s => s.CompletedBatches);
    }

    [Fact]
    public async Task A_job_submitted_through_any_node_runs_once_and_every_node_can_ask_how_it_stands()
    {
        await EveryDeviceRegistered();
        var inbox = Inbox(_cluster!.Nodes[2]);
        var (bridge, reader) = (inbox.Actor, inbox);
        _cluster.Regions[2].Tell(new SubmitJob("job-1", RowBatch.From(Rows()), new JobOptions(MaxBatchSize: 1), bridge, StreamResults: false));
        object answer;
        while ((answer = await reader.NextAsync().AsTask().WaitAsync(Timeout)) is not JobCompleted and not JobFailed)
        {
        }

        var completed = Assert.IsType<JobCompleted>(answer);
        Assert.True(Fixtures.MaxAbsDiff((Tensor)completed.Results!, Fixtures.Expected("lm_logits")) <= 1e-4);
        var status = await _cluster.Regions[1].Ask<JobStatus>(new GetJobStatus("job-1"), Timeout);
        Assert.Equal(new JobStatus("job-1", JobState.Completed, 4, 4), status);
        Assert.Equal(JobState.Unknown, (await _cluster.Regions[0].Ask<JobStatus>(new GetJobStatus("no-such-job"), Timeout)).State);

        // The same job id again, through another node: the outcome comes back from the job's home, nothing runs again.
        var before = await BatchesRun(_cluster.Nodes[0]);
        var againInbox = Inbox(_cluster.Nodes[0]);
        var (again, againReader) = (againInbox.Actor, againInbox);
        _cluster.Regions[0].Tell(new SubmitJob("job-1", RowBatch.From(Rows()), new JobOptions(MaxBatchSize: 1), again, StreamResults: false));
        var repeated = Assert.IsType<JobCompleted>(await againReader.NextAsync().AsTask().WaitAsync(Timeout));
        Assert.True(Fixtures.MaxAbsDiff((Tensor)repeated.Results!, Fixtures.Expected("lm_logits")) <= 1e-4);
        Assert.Equal(before, await BatchesRun(_cluster.Nodes[0]));
        _output.WriteLine($"job-1: {status}; {before} batches run in all");
    }

    [Fact]
    public async Task A_replica_client_runs_jobs_through_the_region_of_a_node()
    {
        await EveryDeviceRegistered();
        var client = new ReplicaClient(_cluster!.Nodes[1], _cluster.Regions[1]);
        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => client.RunAsync(Rows(), new JobOptions(MaxBatchSize: 2))));
        Assert.All(results, r => Assert.True(Fixtures.MaxAbsDiff((Tensor)r.Results!, Fixtures.Expected("lm_logits")) <= 1e-4));
    }

    [Fact]
    public async Task A_resubmitting_client_is_told_once_when_its_job_is_accepted_and_which_node_coordinates_it()
    {
        await EveryDeviceRegistered();
        var told = new List<string>();
        var client = new ReplicaClient(_cluster!.Nodes[1], _cluster.Regions[1]) { ResubmitOnLoss = true, OnAccepted = told.Add };
        var result = await client.RunAsync(Rows(), new JobOptions(MaxBatchSize: 1));
        Assert.True(Fixtures.MaxAbsDiff((Tensor)result.Results!, Fixtures.Expected("lm_logits")) <= 1e-4);

        var line = Assert.Single(told);
        _output.WriteLine(line);
        Assert.Matches("^job [0-9a-f]{32}: accepted, 4 row\\(s\\) in 4 batch\\(es\\) on 3 device\\(s\\), coordinated at akka.tcp://distributed-inference@127.0.0.1:[0-9]+$", line);
        Assert.Contains(_cluster.Nodes, node => line.EndsWith($" at {Akka.Cluster.Cluster.Get(node).SelfAddress}", StringComparison.Ordinal));
    }

    // 2000 rows, one per batch: with the devices held, the job is still running when the test acts on it.
    private static object ManyRows() => Gpt2Replica.Rows(cat(Enumerable.Repeat(Fixtures.Expected("input_ids"), 500).ToArray(), 0), null);

    // A reply address of the test's own: what is sent to it is read in order.
    private static Request Inbox(ActorSystem node) => Request.Start(node, null, null, new RequestPolicy { Watch = RequestWatch.None });

    private static async Task<object> Next(Request reader, Func<object, bool> wanted)
    {
        object message;
        while (!wanted(message = await reader.NextAsync().AsTask().WaitAsync(Timeout)))
        {
        }

        return message;
    }

    [Fact]
    public async Task CancelJob_through_any_node_stops_the_job_at_its_home()
    {
        await EveryDeviceRegistered();
        _devicesMayRun.Reset();
        var inbox = Inbox(_cluster!.Nodes[2]);
        var (bridge, reader) = (inbox.Actor, inbox);
        _cluster.Regions[2].Tell(new SubmitJob("job-cancel", RowBatch.From(ManyRows()), new JobOptions(MaxBatchSize: 1), bridge, StreamResults: false));
        await Next(reader, m => m is JobAccepted);
        _cluster.Regions[0].Tell(new CancelJob("job-cancel"));
        var failed = Assert.IsType<JobFailed>(await Next(reader, m => m is JobFailed or JobCompleted));
        Assert.Equal("cancelled", failed.Reason);
        Assert.Equal(JobState.Failed, (await _cluster.Regions[1].Ask<JobStatus>(new GetJobStatus("job-cancel"), Timeout)).State);
    }

    [Fact]
    public async Task A_job_whose_client_goes_away_is_cancelled()
    {
        await EveryDeviceRegistered();
        _devicesMayRun.Reset();
        var inbox = Inbox(_cluster!.Nodes[2]);
        var (bridge, reader) = (inbox.Actor, inbox);
        _cluster.Regions[2].Tell(new SubmitJob("job-orphan", RowBatch.From(ManyRows()), new JobOptions(MaxBatchSize: 1), bridge, StreamResults: false));
        await Next(reader, m => m is JobAccepted);

        // The client stops waiting (as a cancelled or exited client's reply actor does): its coordinator watches it.
        await bridge.GracefulStop(Timeout);
        JobStatus? status = null;
        await AwaitAssertAsync(
            async () =>
            {
                status = await _cluster.Regions[1].Ask<JobStatus>(new GetJobStatus("job-orphan"), TimeSpan.FromSeconds(5));
                Assert.True(status.State == JobState.Failed, $"the job of a client gone still runs: {status}");
            },
            Timeout,
            TimeSpan.FromMilliseconds(100));

        Assert.Equal("cancelled", status!.Reason);
        Assert.True(status.RowsDone < status.RowsTotal, status.ToString());
    }

    // A replica whose forward waits while the test holds the devices (at most a minute: a held test never hangs CI).
    private sealed class HeldReplica(IReplicaModel model, ManualResetEventSlim mayRun) : IReplicaModel
    {
        public string Description => model.Description;

        public ReplicaSpec? Spec => model.Spec;

        public object Run(object rows)
        {
            mayRun.Wait(TimeSpan.FromMinutes(1));
            return model.Run(rows);
        }

        public void Dispose() => model.Dispose();
    }
}
