using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Replica.Simulation;
using DistributedInference.Actors.Tests.Kernel.Supervision;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Replica;

/// <summary>Rows that fail on every device fail alone: their batch is split until they are isolated; every other row is answered once.</summary>
public sealed class PoisonRowTests : TestKit
{
    public PoisonRowTests()
        : base(DistributedInferenceConfig.Default())
    {
        LibTorch.Initialize();
    }

    private static object[] Ints(int count) => Enumerable.Range(0, count).Cast<object>().ToArray();

    private IActorRef Splitter(int devices, ScriptedReplicaFactory script) =>
        Sys.ActorOf(ReplicaSplitter.Props(Enumerable.Range(0, devices).Select(i => Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, script.Factory), $"device-{i}")).ToList()));

    private static async Task<(JobCompleted Completed, List<RowsCompleted> Answered, List<RowsFailed> Failed)> Collect(TestProbe client)
    {
        await client.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(30));
        var answered = new List<RowsCompleted>();
        var failed = new List<RowsFailed>();
        while (true)
        {
            switch (await client.ReceiveOneAsync(TimeSpan.FromSeconds(60)))
            {
                case RowsCompleted rows:
                    answered.Add(rows);
                    break;
                case RowsFailed rows:
                    failed.Add(rows);
                    break;
                case JobCompleted completed:
                    return (completed, answered, failed);
                case var other:
                    throw new Xunit.Sdk.XunitException($"unexpected {other}");
            }
        }
    }

    [Fact]
    public async Task A_device_that_throws_on_every_third_batch_costs_no_row()
    {
        var failing = Enumerable.Range(1, 100).Select(n => 3 * n).ToHashSet();
        var devices = Enumerable.Range(0, 3).Select(i => Sys.ActorOf(SimulatedDevice.Props($"sim-{i}", new SimulatedDeviceOptions { FailingBatches = i == 0 ? failing : new HashSet<int>() }), $"sim-{i}")).ToList();
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var client = CreateTestProbe();

        splitter.Tell(new SubmitJob("job", Ints(60), new JobOptions(MaxBatchSize: 2), client.Ref));
        var (completed, answered, failed) = await Collect(client);

        Assert.Empty(failed);
        Assert.Empty(completed.FailedRows);
        Assert.Equal(Enumerable.Range(0, 60), ((object[])completed.Results!).Cast<int>());
        Assert.Equal(Enumerable.Range(0, 60), answered.SelectMany(r => Enumerable.Range(r.Start, r.Count)).Order());
        Assert.True(completed.Statistics.ResentBatches > 0);
    }

    [Fact]
    public async Task A_row_the_model_always_throws_on_is_reported_alone_and_every_other_row_once()
    {
        var script = new ScriptedReplicaFactory { Throw = (_, rows) => { if (rows.Contains(13)) throw new InvalidOperationException("row 13 breaks the model"); } };
        var splitter = Splitter(3, script);
        var client = CreateTestProbe();

        splitter.Tell(new SubmitJob("job", Ints(30), new JobOptions(MaxBatchSize: 8) { MaxAttempts = 2 }, client.Ref));
        var (completed, answered, failed) = await Collect(client);

        var poison = Assert.Single(failed);
        Assert.Equal([13], poison.Rows);
        Assert.Contains("failed 2 times; last: ", poison.Error, StringComparison.Ordinal);
        Assert.Contains("row 13 breaks the model", poison.Error, StringComparison.Ordinal);
        Assert.Equal(13, Assert.Single(completed.FailedRows).Index);
        var rows = answered.SelectMany(r => Enumerable.Range(r.Start, r.Count)).ToList();
        Assert.Equal(Enumerable.Range(0, 30).Where(i => i != 13), rows.Order());
        Assert.All(answered, r => Assert.Equal(Enumerable.Range(r.Start, r.Count), ((object[])r.Results!).Cast<int>()));
        var results = (object?[])completed.Results!;
        Assert.Null(results[13]);
        Assert.Equal(Enumerable.Range(0, 30).Where(i => i != 13), results.Where((_, i) => i != 13).Cast<int>());
    }

    [Fact]
    public async Task Poison_rows_in_a_gathered_tensor_output_are_zeros_and_named()
    {
        var script = new ScriptedReplicaFactory { Throw = (_, rows) => { if (rows.Contains(3) || rows.Contains(17)) throw new InvalidOperationException("bad row"); } };
        var splitter = Splitter(2, script);
        var client = CreateTestProbe();
        using var input = arange(20, ScalarType.Float32).unsqueeze(1).repeat(1, 2);

        splitter.Tell(new SubmitJob("job", input, new JobOptions(ApplyPadding: true, MaxBatchSize: 4), client.Ref, StreamResults: false));
        var (completed, _, failed) = await Collect(client);

        Assert.Equal([3, 17], failed.SelectMany(f => f.Rows).Order());
        Assert.Equal([3, 17], completed.FailedRows.Select(f => f.Index));
        using var results = (Tensor)completed.Results!;
        Assert.Equal(new long[] { 20, 2 }, results.shape);
        for (var i = 0; i < 20; i++)
        {
            var expected = i is 3 or 17 ? 0f : 2f * i;
            Assert.Equal(expected, results[i, 0].ToSingle());
        }
    }

    [Fact]
    public async Task When_every_row_fails_the_job_fails()
    {
        var script = new ScriptedReplicaFactory { Throw = (_, _) => throw new InvalidOperationException("nothing works") };
        var splitter = Splitter(2, script);
        var client = CreateTestProbe();

        splitter.Tell(new SubmitJob("job", Ints(3), new JobOptions(MaxBatchSize: 4) { MaxAttempts = 2 }, client.Ref));
        await client.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(30));
        var failed = (JobFailed)await client.FishForMessageAsync(m => m is JobFailed or JobCompleted, TimeSpan.FromSeconds(60));
        Assert.StartsWith("every row failed; row 0: failed 2 times; last: ", failed.Reason, StringComparison.Ordinal);
    }
}
