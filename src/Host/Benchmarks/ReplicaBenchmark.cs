using System.Globalization;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Simulation;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// Replica mode, side by side in one run: (1) the actor runtime against a plain TorchSharp loop over the same batches on
/// the same device (target: >= 0.98x); (2) scaling on N simulated devices of fixed batch latency (target: >= 0.9 N).
/// </summary>
public static class ReplicaBenchmark
{
    public static async Task Run(string model, int rows, int sequence, int maxBatchSize, int repeats, TextWriter output)
    {
        LibTorch.Initialize();
        var source = Gpt2Source.Resolve(model);
        using var ids = randint(0, source.Config.VocabSize, [rows, sequence], ScalarType.Int64);

        using var direct = Gpt2TaskModel.Load(source, InferenceTask.Logits, CPU, ScalarType.Float32);
        // The same work as a job: every batch's logits kept, then joined in row order.
        var loop = await Measure.Median(repeats, () =>
        {
            var parts = new List<Tensor>();
            for (long start = 0; start < rows; start += maxBatchSize)
            {
                parts.Add(direct.Run(ids.narrow(0, start, Math.Min(maxBatchSize, rows - start)), null));
            }

            using var all = cat(parts, 0);
            parts.ForEach(p => p.Dispose());
            return Task.CompletedTask;
        });

        await using var runtime = await ReplicaRuntime.StartAsync([DeviceName.Cpu], Gpt2Replica.Factory(source, InferenceTask.Logits, ScalarType.Float32, 0));
        var busy = new List<TimeSpan>();
        var actors = await Measure.Median(repeats, async () =>
        {
            var result = await runtime.Client.RunAsync(ids, new JobOptions(MaxBatchSize: maxBatchSize));
            ((Tensor)result.Results!).Dispose();
            busy.Add(result.Statistics.Devices.Values.Single().Busy);
        });

        await output.WriteLineAsync(Invariant($"replica overhead ({model}, {rows} rows x {sequence} tokens, batches of {maxBatchSize}, cpu, median of {repeats}):"));
        await output.WriteLineAsync(Invariant($"  direct TorchSharp loop {loop.TotalMilliseconds:F1} ms, through the actors {actors.TotalMilliseconds:F1} ms (device busy {busy.Order().ElementAt(busy.Count / 2).TotalMilliseconds:F1} ms): {loop / actors:F3}x (target >= 0.98x)"));

        await output.WriteLineAsync(Invariant($"replica scaling on simulated devices (64 batches of 50 ms, median of {repeats}):"));
        TimeSpan? one = null;
        foreach (var devices in new[] { 1, 2, 4, 8 })
        {
            await using var simulated = await Simulated(devices);
            var time = await Measure.Median(repeats, () => simulated.Client.RunAsync(Enumerable.Range(0, 64).ToArray(), new JobOptions(MaxBatchSize: 1)));
            one ??= time;
            await output.WriteLineAsync(Invariant($"  {devices} device(s): {time.TotalMilliseconds:F0} ms, speed-up {one.Value / time:F2} = {one.Value / time / devices:F2} N (target >= 0.9 N)"));
        }
    }

    private static Task<SimulatedReplicas> Simulated(int devices)
    {
        var system = Akka.Actor.ActorSystem.Create("bench", Actors.Configuration.DistributedInferenceConfig.Default());
        var refs = Enumerable.Range(0, devices)
            .Select(i => system.ActorOf(SimulatedDevice.Props($"sim-{i}", new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromMilliseconds(50) })))
            .ToList();
        var splitter = system.ActorOf(ReplicaSplitter.Props(refs));
        return Task.FromResult(new SimulatedReplicas(system, new ReplicaClient(system, splitter)));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private sealed record SimulatedReplicas(Akka.Actor.ActorSystem System, ReplicaClient Client) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await System.Terminate();
    }
}
