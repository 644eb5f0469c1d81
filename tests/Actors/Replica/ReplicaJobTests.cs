using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Replica.Simulation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;

namespace DistributedInference.Actors.Tests.Replica;

/// <summary>The splitter and its jobs, on simulated devices. Timed, so never run beside other tests.</summary>
[Collection(TimedTests.Collection)]
public sealed class ReplicaJobTests : TestKit
{
    private readonly ITestOutputHelper _output;

    public ReplicaJobTests(ITestOutputHelper output)
        : base(DistributedInferenceConfig.Default(), output: output)
    {
        _output = output;
    }

    private IActorRef[] Devices(int count, Func<int, SimulatedDeviceOptions>? options = null) =>
        Enumerable.Range(0, count).Select(i => Sys.ActorOf(SimulatedDevice.Props($"sim-{i}", options?.Invoke(i)), $"sim-{i}")).ToArray();

    // Async all the way: a test thread blocked in a receive would starve the 2-core thread pool the actors run on.
    private async Task<(JobCompleted Completed, List<RowsCompleted> Streamed)> Run(IActorRef splitter, object input, JobOptions options, TimeSpan? timeout = null)
    {
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(input), options, client.Ref));
        await client.ExpectMsgAsync<JobAccepted>();
        var streamed = new List<RowsCompleted>();
        while (true)
        {
            var message = await client.ReceiveOneAsync(timeout ?? TimeSpan.FromSeconds(20));
            switch (message)
            {
                case RowsCompleted rows:
                    streamed.Add(rows);
                    break;
                case JobCompleted completed:
                    return (completed, streamed);
                case JobFailed failed:
                    throw new Xunit.Sdk.XunitException($"job failed: {failed.Reason}");
            }
        }
    }

    private static void AssertEveryRowOnceInOrder(int rows, JobCompleted completed, List<RowsCompleted> streamed)
    {
        Assert.Equal(Enumerable.Range(0, rows), ((object[])completed.Results!).Cast<int>());
        var seen = streamed.SelectMany(s => Enumerable.Range(s.Start, s.Count)).Order().ToList();
        Assert.Equal(Enumerable.Range(0, rows), seen);
        Assert.All(streamed, s => Assert.Equal(Enumerable.Range(s.Start, s.Count), ((object[])s.Results!).Cast<int>()));
    }

    [Theory]
    [InlineData(1, 10, 3, false)]
    [InlineData(3, 10, 4, false)]
    [InlineData(3, 5, 1, true)]
    [InlineData(4, 5, 2, true)]
    [InlineData(4, 2, 8, true)]
    public async Task Returns_every_row_once_in_input_order_with_padding_dropped(int devices, int rows, int maxBatchSize, bool pad)
    {
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(Devices(devices)));
        var (completed, streamed) = await Run(splitter, Enumerable.Range(0, rows).ToArray(), new JobOptions(pad, maxBatchSize));
        AssertEveryRowOnceInOrder(rows, completed, streamed);
        var processed = completed.Statistics.Devices.Values.Sum(d => d.Rows);
        Assert.Equal(rows, processed);
    }

    [Fact]
    public async Task Four_equal_devices_share_64_batches_fairly()
    {
        var latency = TimeSpan.FromMilliseconds(100);
        var devices = Devices(4, _ => new SimulatedDeviceOptions { BatchLatency = latency });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var (completed, streamed) = await Run(splitter, Enumerable.Range(0, 64).ToArray(), new JobOptions(false, MaxBatchSize: 1));

        AssertEveryRowOnceInOrder(64, completed, streamed);
        var perDevice = await Task.WhenAll(devices.Select(d => d.Ask<List<BatchSpan>>(GetBatchSpans.Instance, TimeSpan.FromSeconds(5))));
        var spans = perDevice.SelectMany(s => s).ToList();
        var batchTime = TimeSpan.FromTicks((long)spans.Average(s => (s.Finished - s.Started).Ticks));
        var ideal = batchTime * 64 / 4;
        var ratio = completed.Statistics.Elapsed / ideal;
        _output.WriteLine($"64 batches on 4 devices: {completed.Statistics.Elapsed.TotalMilliseconds:F0} ms, ideal {ideal.TotalMilliseconds:F0} ms " +
                          $"(measured batch time {batchTime.TotalMilliseconds:F1} ms, nominal {latency.TotalMilliseconds} ms): {ratio:F3}x, " +
                          $"scaling {64 * batchTime / completed.Statistics.Elapsed:F2} of 4");
        // Speed is di bench replica's to measure; here, the split: every device took a fair part of the work.
        Assert.Equal(64, spans.Count);
        Assert.All(perDevice, batches => Assert.InRange(batches.Count, 8, 24));
    }

    [Fact]
    public async Task A_device_stopped_mid_job_loses_no_row()
    {
        var devices = Devices(4, i => new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromMilliseconds(20), StopAtBatch = i == 1 ? 3 : null });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var (completed, streamed) = await Run(splitter, Enumerable.Range(0, 40).ToArray(), new JobOptions(false, MaxBatchSize: 2));
        AssertEveryRowOnceInOrder(40, completed, streamed);
        Assert.True(completed.Statistics.ResentBatches >= 1);
    }

    [Fact]
    public void A_device_stopped_from_outside_mid_job_loses_no_row()
    {
        var devices = Devices(3, _ => new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromMilliseconds(30) });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(Enumerable.Range(0, 30).ToArray()), new JobOptions(false, 1), client.Ref));
        client.ExpectMsg<JobAccepted>();
        client.ExpectMsg<RowsCompleted>();
        Sys.Stop(devices[2]);
        var rows = new List<RowsCompleted>();
        var completed = client.FishForMessage(m => m is JobCompleted, TimeSpan.FromSeconds(10)) as JobCompleted;
        Assert.Equal(Enumerable.Range(0, 30), ((object[])completed!.Results!).Cast<int>());
    }

    [Fact]
    public async Task Failed_batches_are_retried_on_another_device()
    {
        var devices = Devices(2, i => new SimulatedDeviceOptions { FailingBatches = i == 0 ? new HashSet<int> { 1, 2 } : new HashSet<int>() });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var (completed, streamed) = await Run(splitter, Enumerable.Range(0, 8).ToArray(), new JobOptions(false, 2));
        AssertEveryRowOnceInOrder(8, completed, streamed);
        Assert.Equal(2, completed.Statistics.ResentBatches);
    }

    [Fact]
    public void A_job_whose_every_row_fails_everywhere_fails_with_the_reason()
    {
        // The batch of 2 fails 3 times, then each of its rows alone fails 3 times: both rows failed, so the job did.
        var devices = Devices(2, _ => new SimulatedDeviceOptions { FailingBatches = Enumerable.Range(1, 10).ToHashSet() });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(new[] { 1, 2 }), new JobOptions(false, 2) { MaxAttempts = 3 }, client.Ref));
        client.ExpectMsg<JobAccepted>();
        Assert.Equal([0, 1], new[] { client.ExpectMsg<RowsFailed>(), client.ExpectMsg<RowsFailed>() }.SelectMany(f => f.Rows).Order());
        var failed = client.ExpectMsg<JobFailed>();
        Assert.StartsWith("every row failed; row 0: ", failed.Reason, StringComparison.Ordinal);
        Assert.Contains("failed 3 times; last: ", failed.Reason, StringComparison.Ordinal);
        Assert.Contains("injected failure", failed.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_slow_device_gets_its_queued_work_taken_by_idle_ones()
    {
        var devices = Devices(4, i => new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromMilliseconds(i == 0 ? 400 : 20) });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var (completed, streamed) = await Run(splitter, Enumerable.Range(0, 40).ToArray(), new JobOptions(false, 1));
        AssertEveryRowOnceInOrder(40, completed, streamed);
        // Its own share would be 10 batches: idle devices took some of them.
        Assert.True(completed.Statistics.Devices["sim-0"].Batches < 10, $"{completed.Statistics.Devices["sim-0"].Batches}");
    }

    [Fact]
    public async Task A_batch_without_an_answer_is_re_sent_after_the_batch_timeout()
    {
        var devices = Devices(2, i => new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromMilliseconds(i == 0 ? 60_000 : 10) });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var (completed, streamed) = await Run(splitter, Enumerable.Range(0, 6).ToArray(), new JobOptions(false, 1) { BatchTimeout = TimeSpan.FromMilliseconds(300) });
        AssertEveryRowOnceInOrder(6, completed, streamed);
    }

    [Fact]
    public void Every_device_stopping_fails_the_job()
    {
        var devices = Devices(2, _ => new SimulatedDeviceOptions { StopAtBatch = 1 });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(new[] { 1, 2, 3 }), new JobOptions(), client.Ref));
        client.ExpectMsg<JobAccepted>();
        Assert.Equal("every device stopped", client.ExpectMsg<JobFailed>().Reason);
    }

    [Fact]
    public void An_empty_input_completes_with_no_results()
    {
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(Devices(2)));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(Array.Empty<int>()), new JobOptions(ApplyPadding: true), client.Ref));
        client.ExpectMsg<JobAccepted>(a => a.Rows == 0);
        Assert.Null(client.ExpectMsg<JobCompleted>().Results);
    }

    [Fact]
    public void Input_that_cannot_be_split_is_refused_or_fails_the_job_with_a_clear_reason()
    {
        // Not a payload at all: refused before any message is made.
        Assert.StartsWith("cannot split a string", Assert.Throws<ArgumentException>(() => RowBatch.From("a dog")).Message, StringComparison.Ordinal);
        Assert.Contains("Uri", Assert.Throws<ArgumentException>(() => RowBatch.From(new object[] { new Uri("http://127.0.0.1") })).Message, StringComparison.Ordinal);

        // A payload without rows: the job fails with the reason.
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(Devices(2)));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", TorchSharp.torch.tensor(1f), new JobOptions(), client.Ref));
        var failed = client.ExpectMsg<JobFailed>();
        Assert.StartsWith("cannot split a 0-dimensional tensor", failed.Reason, StringComparison.Ordinal);
        Assert.True(failed.InputError);
    }

    [Fact]
    public async Task Without_streaming_progress_carries_no_results_and_the_job_frees_batch_results()
    {
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(Devices(2, _ => new SimulatedDeviceOptions { Compute = rows => TorchSharp.torch.tensor(((object[])rows).Cast<int>().Select(i => (float)i).ToArray()) })));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(Enumerable.Range(0, 6).ToArray()), new JobOptions(false, 2), client.Ref, StreamResults: false));
        await client.ExpectMsgAsync<JobAccepted>();
        var progress = new List<RowsCompleted>();
        JobCompleted? completed = null;
        while (completed is null)
        {
            switch (await client.ReceiveOneAsync(TimeSpan.FromSeconds(10)))
            {
                case RowsCompleted rows:
                    progress.Add(rows);
                    break;
                case JobCompleted done:
                    completed = done;
                    break;
            }
        }

        Assert.All(progress, p => Assert.Null(p.Results));
        Assert.Equal(6, progress[^1].RowsDone);
        Assert.Equal([0f, 1, 2, 3, 4, 5], ((TorchSharp.torch.Tensor)completed.Results!).data<float>().ToArray());
    }

    [Fact]
    public async Task A_device_removed_mid_job_has_its_batches_re_sent_at_once()
    {
        var devices = Devices(2, i => new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromMilliseconds(i == 1 ? 60_000 : 10) });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(Enumerable.Range(0, 10).ToArray()), new JobOptions(false, 1), client.Ref));
        await client.ExpectMsgAsync<JobAccepted>();
        splitter.Tell(new RemoveDevice(devices[1]));
        var completed = (JobCompleted)await client.FishForMessageAsync(m => m is JobCompleted, TimeSpan.FromSeconds(10));
        Assert.Equal(Enumerable.Range(0, 10), ((object[])completed.Results!).Cast<int>());
        var left = await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal([devices[0]], left.Devices);
    }

    [Fact]
    public void A_device_added_mid_job_takes_work()
    {
        var slow = new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromMilliseconds(50) };
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(Devices(1, _ => slow)));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(Enumerable.Range(0, 20).ToArray()), new JobOptions(false, 1), client.Ref));
        client.ExpectMsg<JobAccepted>();
        splitter.Tell(new AddDevice(Sys.ActorOf(SimulatedDevice.Props("late", slow), "late")));
        var completed = (JobCompleted)client.FishForMessage(m => m is JobCompleted, TimeSpan.FromSeconds(10));
        Assert.Equal(Enumerable.Range(0, 20), ((object[])completed.Results!).Cast<int>());
        Assert.True(completed.Statistics.Devices["late"].Batches > 0);
    }

    [Fact]
    public async Task A_job_naming_its_model_runs_only_on_devices_serving_its_weights_late_ones_included()
    {
        // The weights are the model: another name for the same weights serves the job, the same name for others does not.
        var model = new ModelIdentity("lm", new string('a', 64));
        static ReplicaSpec Serving(ModelIdentity model) => new(model, InferenceTask.Logits, Precision.Fp32);
        var latency = TimeSpan.FromMilliseconds(50);
        var devices = Devices(3, i => new SimulatedDeviceOptions { BatchLatency = latency, Spec = Serving(i == 1 ? model with { WeightsDigest = new string('b', 64) } : model) });
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(Enumerable.Range(0, 24).ToArray()), new JobOptions(false, 1) { Model = model }, client.Ref));
        Assert.Equal(2, (await client.ExpectMsgAsync<JobAccepted>()).Devices);
        splitter.Tell(new AddDevice(Sys.ActorOf(SimulatedDevice.Props("late-other", new SimulatedDeviceOptions { BatchLatency = latency, Spec = Serving(ModelIdentity.BuiltIn("other", 0)) }), "late-other")));
        splitter.Tell(new AddDevice(Sys.ActorOf(SimulatedDevice.Props("late-same", new SimulatedDeviceOptions { BatchLatency = latency, Spec = Serving(model with { Name = "lm-copy" }) }), "late-same")));
        var completed = (JobCompleted)await client.FishForMessageAsync(m => m is JobCompleted, TimeSpan.FromSeconds(10));
        Assert.Equal(Enumerable.Range(0, 24), ((object[])completed.Results!).Cast<int>());
        Assert.Equal(["late-same", "sim-0", "sim-2"], completed.Statistics.Devices.Where(d => d.Value.Batches > 0).Select(d => d.Key).Order());
    }

    [Fact]
    public async Task A_job_for_a_model_no_device_serves_fails_as_an_input_error_naming_what_they_serve()
    {
        var (served, asked) = (ModelIdentity.BuiltIn("gpt2-tiny", 3), ModelIdentity.BuiltIn("gpt2-tiny", 4));
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(Devices(2, _ => new SimulatedDeviceOptions { Spec = new ReplicaSpec(served, InferenceTask.Logits, Precision.Fp32) })));
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("job", RowBatch.From(new[] { 1, 2, 3 }), new JobOptions() { Model = asked }, client.Ref));
        var failed = await client.ExpectMsgAsync<JobFailed>();
        Assert.True(failed.InputError);
        Assert.Equal(
            $"no device serves model {asked} (they serve {served} (logits, fp32)): run the job for a model they serve, or start devices with model {asked}",
            failed.Reason);
    }
}
