using System.Diagnostics;
using DistributedInference.Host.Cluster;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// Traces across processes: a replica job submitted by <c>di infer --join</c> to 3 <c>di node</c>s is one trace (W3C
/// context carried in the submission and in each batch), whose spans come from the client and every node, every
/// parent link pointing at a span of the same trace, exported by OTLP as configured by OpenTelemetry's variables.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ClusterTraceTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private readonly string _folder = Directory.CreateTempSubdirectory("di-trace-").FullName;
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public ClusterTraceTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task A_replica_job_over_three_nodes_is_one_trace_with_spans_from_every_process()
    {
        using var collector = new OtlpCollector();
        var input = Path.Combine(_folder, "rows.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [64, 8], generator: new Generator(3), dtype: ScalarType.Int64) });
        var log = new LogLines();
        await using var nodes = await LocalCluster.StartAsync(
            3, _ => ["--devices", "cpu", "--model", DiRunner.TinyClassifier, "--task", "classify"], log, CancellationToken.None, forwardStderr: true, environment: collector.Environment);

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "infer", "--join", nodes.Seed, "--mode", "replica", "--task", "classify",
                     "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", Path.Combine(_folder, "out.safetensors"), "--max-batch-size", "2" })
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in collector.Environment)
        {
            start.Environment[name] = value;
        }

        using var client = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(client);
        var stdout = client.StandardOutput.ReadToEndAsync();
        var stderr = client.StandardError.ReadToEndAsync();
        await client.WaitForExitAsync().WaitAsync(Timeout);
        Assert.True(client.ExitCode == 0, await stderr + log);
        await stdout;

        // The client's job span, its coordinator's span, and a span per batch (64 rows, at most 2 a batch) under the coordinator.
        static IReadOnlyList<CollectedSpan> InTrace(IReadOnlyList<CollectedSpan> spans) =>
            spans.FirstOrDefault(s => s.Name == "di.job") is { } job ? spans.Where(s => s.TraceId == job.TraceId).ToList() : [];
        var trace = InTrace(await collector.WhenAsync(
            spans => InTrace(spans) is var t && t.Count(s => s.Name == "di.batch") >= 32 && t.Any(s => s.Name == "di.job.coordinate"),
            Timeout, "the job's trace"));

        // The trace as text, parents before children (README's "Operating a cluster" shows one).
        void Print(CollectedSpan span, int depth)
        {
            _output.WriteLine($"{new string(' ', 2 * depth)}{span.Name} [{span.Instance}] {string.Join(" ", span.Attributes.Where(a => a.Key.StartsWith("di.", StringComparison.Ordinal)).Select(a => $"{a.Key}={a.Value}"))}");
            foreach (var child in trace.Where(c => c.ParentSpanId == span.SpanId))
            {
                Print(child, depth + 1);
            }
        }

        foreach (var root in trace.Where(s => trace.All(p => p.SpanId != s.ParentSpanId)))
        {
            Print(root, 0);
        }

        var job = Assert.Single(trace, s => s.Name == "di.job");
        Assert.Equal(string.Empty, job.ParentSpanId.Trim('0'));
        var coordinators = trace.Where(s => s.Name == "di.job.coordinate").ToList();
        Assert.All(coordinators, c => Assert.Equal(job.SpanId, c.ParentSpanId));
        var batches = trace.Where(s => s.Name == "di.batch").ToList();
        Assert.All(batches, b => Assert.Contains(b.ParentSpanId, coordinators.Select(c => c.SpanId)));
        var indices = batches.Select(b => int.Parse(b.Attributes["di.batch.index"], System.Globalization.CultureInfo.InvariantCulture)).Distinct().Order().ToList();
        Assert.Equal(Enumerable.Range(0, indices.Count), indices);
        Assert.True(indices.Count >= 32, $"{indices.Count} batches for 64 rows 2 at a time");

        // Spans from all 3 node processes (their devices) and from the client: 4 processes.
        Assert.Equal(nodes.Ports.Select(p => $"127.0.0.1:{p}").Order(), batches.Select(b => b.Attributes["di.node"].Split('@')[1]).Distinct().Order());
        Assert.Equal(4, trace.Select(s => s.Instance).Distinct().Count());
    }
}
