using System.Diagnostics;
using DistributedInference.Host.Cluster;
using DistributedInference.Models.Loading;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// No single point of failure in a replica job: <c>kill -9</c> of any one node of three mid-job (the node hosting the
/// job's coordinator, or the seed) costs no row. The client keeps the rows it received and submits the others again to
/// a coordinator on a surviving node (at-least-once compute, exactly-once output): the output is that of a
/// single-process run, every row once.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ReplicaNodeLossTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);
    private const int RowCount = 1000;

    private readonly string _folder = Directory.CreateTempSubdirectory("di-node-loss-").FullName;
    private readonly ITestOutputHelper _log;

    public ReplicaNodeLossTests(ITestOutputHelper log) => _log = log;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("coordinator")]
    [InlineData("seed")]
    public async Task A_replica_job_survives_a_kill_9_of_the_coordinators_node_or_the_seed_with_every_row_once(string victim)
    {
        // Every row different (a row answered for another would show), 1000 rows one per batch: several seconds of work.
        var input = Path.Combine(_folder, "rows.safetensors");
        var generator = new TorchSharp.torch.Generator(7);
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [RowCount, 16], generator: generator, dtype: ScalarType.Int64) });
        var expected = Path.Combine(_folder, "single.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--mode", "replica", "--task", "classify", "--model", DiRunner.TinyClassifier,
            "--input-ids", input, "--output", expected, "--max-batch-size", "8");
        Assert.True(exit == 0, stderr);

        var log = new LogLines();
        await using var nodes = await LocalCluster.StartAsync(
            3, _ => ["--devices", "cpu", "--model", DiRunner.TinyClassifier, "--task", "classify", "--verbose"], log, CancellationToken.None, forwardStderr: true);

        var output = Path.Combine(_folder, "cluster.safetensors");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "infer", "--join", nodes.Seed, "--mode", "replica", "--task", "classify",
                     "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output, "--max-batch-size", "1" })
        {
            start.ArgumentList.Add(arg);
        }

        using var client = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(client);
        var stdout = client.StandardOutput.ReadToEndAsync();
        var clientErr = new System.Text.StringBuilder();

        // The client says when its job is accepted and which node coordinates it: the job is under way. Kill the chosen
        // node without a goodbye.
        int? coordinator = null;
        while (coordinator is null && await client.StandardError.ReadLineAsync().WaitAsync(Timeout) is { } line)
        {
            clientErr.AppendLine(line);
            if (line.StartsWith("di: job ", StringComparison.Ordinal) && line.Contains(": accepted, ", StringComparison.Ordinal))
            {
                var port = int.Parse(line[(line.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
                coordinator = nodes.Ports.ToList().IndexOf(port);
                Assert.True(coordinator >= 0, $"the job is coordinated on no node of this cluster: {line}");
            }
        }

        Assert.True(coordinator is not null, $"the job was never accepted:\n{clientErr}\n{log}");
        var rest = client.StandardError.ReadToEndAsync();
        var killed = victim == "seed" ? 0 : coordinator.Value;
        nodes.Processes[killed].Kill();

        await client.WaitForExitAsync().WaitAsync(Timeout);
        await stdout;
        var err = clientErr.Append(await rest).ToString();
        _log.WriteLine($"coordinator: node {coordinator}, killed: node {killed}\n{err}");
        Assert.True(client.ExitCode == 0, err);
        if (killed == coordinator)
        {
            Assert.Contains("stopped before the job ended; submitting the ", err, StringComparison.Ordinal);
        }

        // Exactly the single-process output: every row once, in its place.
        var actual = SafeTensorsFile.Open(output).Read("logits");
        Assert.Equal([RowCount, 3L], actual.shape);
        Assert.True(DiRunner.MaxAbsDiff(actual, SafeTensorsFile.Open(expected).Read("logits")) <= 1e-4);
    }
}
