using System.Diagnostics;
using System.Globalization;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Replica.Simulation;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// Replica mode, side by side in one run: (1) the actor runtime against a plain loop over the same batches with the
/// same replica model on the same device (target: >= 0.98x), both timed in every round, the ratio taken within each
/// round; (2) scaling on N simulated devices of fixed batch latency, against the ideal (batches x latency / N) in
/// milliseconds (target: >= 0.9 of it). The last line is the headline ratio.
/// </summary>
public static class ReplicaBenchmark
{
    /// <summary>Runs both parts and prints them to <paramref name="output"/>.</summary>
    /// <param name="model">Any model folder or built-in; its logits task is run.</param>
    /// <param name="device">cpu or cuda:N: where both the direct loop and the single device actor run.</param>
    /// <param name="rounds">Rounds measured after one warm-up; each round times the direct loop, then the actors.</param>
    public static async Task Run(string model, string device, Precision dtype, string? libtorch, int rows, int sequence, int maxBatchSize, int rounds, TextWriter output)
    {
        LibTorch.Initialize(libtorch);
        var deviceName = DeviceName.Parse(device);
        deviceName.ToTorch();
        var precision = dtype.ToScalarType();
        var source = AutoModelSource.Resolve(model);
        var factory = source.Replica(InferenceTask.Logits, precision, GenerationOptions.Greedy);
        using var ids = randint(0, source.VocabSize, [rows, sequence], ScalarType.Int64);

        using var direct = factory(deviceName);
        // The same work as a job: every batch's logits kept (copied off the device), then joined in row order.
        Task Loop()
        {
            var parts = new List<Tensor>();
            for (long start = 0; start < rows; start += maxBatchSize)
            {
                parts.Add((Tensor)direct.Run(ids.narrow(0, start, Math.Min(maxBatchSize, rows - start))));
            }

            using var all = cat(parts, 0);
            parts.ForEach(p => p.Dispose());
            return Task.CompletedTask;
        }

        await using var runtime = await ReplicaRuntime.StartAsync([deviceName], factory);
        var busy = TimeSpan.Zero;
        async Task Actors()
        {
            var result = await runtime.Client.RunAsync(ids, new JobOptions(MaxBatchSize: maxBatchSize));
            ((Tensor)result.Results!).Dispose();
            busy = result.Statistics.Devices.Values.Single().Busy;
        }

        await Loop();
        await Actors();
        var measured = new List<(double Loop, double Actors, double Busy)>();
        for (var r = 0; r < rounds; r++)
        {
            var loop = await Time(Loop);
            var actors = await Time(Actors);
            measured.Add((loop, actors, busy.TotalSeconds));
        }

        var median = measured.OrderBy(m => m.Loop / m.Actors).ElementAt(measured.Count / 2);
        var overhead = median.Loop / median.Actors;
        var batches = (rows + maxBatchSize - 1) / maxBatchSize;
        await output.WriteLineAsync(Invariant($"replica overhead: {source.Name} logits, {rows} rows x {sequence} tokens in {batches} batches of {maxBatchSize}, {dtype.Name()} on {deviceName}; {rounds} round(s), each timing the direct loop then the actors; the round with the median ratio:"));
        await output.WriteLineAsync(Invariant($"  direct loop (same replica model, calling thread) {median.Loop * 1e3:F1} ms per job; through the actors {median.Actors * 1e3:F1} ms per job, of which the device actor computed {median.Busy * 1e3:F1} ms (sum of its batch times)"));
        await output.WriteLineAsync(Invariant($"  ratio per round (direct / actors): {string.Join(" ", measured.Select(m => (m.Loop / m.Actors).ToString("F3", CultureInfo.InvariantCulture)))}; median {overhead:F3}x (target >= 0.98x)"));

        const int simulatedBatches = 64;
        var latency = TimeSpan.FromMilliseconds(50);
        await output.WriteLineAsync(Invariant($"replica scaling on simulated devices: {simulatedBatches} batches of {latency.TotalMilliseconds:F0} ms each, median of {rounds} round(s):"));
        var worst = double.MaxValue;
        foreach (var devices in new[] { 1, 2, 4, 8 })
        {
            await using var simulated = await Simulated(devices, latency);
            var times = new List<double>();
            await simulated.Client.RunAsync(Enumerable.Range(0, simulatedBatches).ToArray(), new JobOptions(MaxBatchSize: 1));
            for (var r = 0; r < rounds; r++)
            {
                times.Add(await Time(() => simulated.Client.RunAsync(Enumerable.Range(0, simulatedBatches).ToArray(), new JobOptions(MaxBatchSize: 1))));
            }

            var time = times.Order().ElementAt(times.Count / 2);
            var ideal = simulatedBatches * latency.TotalSeconds / devices;
            var perBatch = time / Math.Ceiling(simulatedBatches / (double)devices);
            worst = Math.Min(worst, ideal / time);
            await output.WriteLineAsync(Invariant($"  {devices} device(s): {time * 1e3:F0} ms per job against an ideal of {ideal * 1e3:F0} ms ({simulatedBatches} x {latency.TotalMilliseconds:F0} ms / {devices}): {ideal / time:F2} of ideal; {perBatch * 1e3:F1} ms per batch on a device for {latency.TotalMilliseconds:F0} ms of simulated work (target >= 0.90 of ideal)"));
        }

        await output.WriteLineAsync(Invariant($"headline: actors / direct loop speed {overhead:F3}x (target >= 0.98x); simulated scaling, worst of 1-8 devices, {worst:F2} of ideal (target >= 0.90)"));
    }

    private static async Task<double> Time(Func<Task> run)
    {
        var clock = Stopwatch.StartNew();
        await run();
        return clock.Elapsed.TotalSeconds;
    }

    private static Task<SimulatedReplicas> Simulated(int devices, TimeSpan latency)
    {
        var system = Akka.Actor.ActorSystem.Create("bench", Actors.Kernel.Settings.DistributedInferenceConfig.Default());
        var refs = Enumerable.Range(0, devices)
            .Select(i => system.ActorOf(SimulatedDevice.Props($"sim-{i}", new SimulatedDeviceOptions { BatchLatency = latency })))
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
