using System.Diagnostics;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Host.Cluster;
using DistributedInference.Models.Loading;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// Ctrl-C / SIGTERM of a cluster client mid-job: the client exits with 130 / 143 and writes nothing, and the cluster
/// cancels the job (its coordinator watches the client) instead of computing it for nobody, without retrying a
/// connection to the gone client once per message. Each step waits on an event: the client's line saying its job is
/// accepted, its exit, the job's status asked of the cluster, a connection to a port the test listens on.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class CancellationTests : TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    // How long a signalled process may take to exit: the signal's grace (TerminationSignals.Grace, 3.5 s) several
    // times over, a failure bound only.
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(30);

    private readonly string _folder = Directory.CreateTempSubdirectory("di-cancel-").FullName;
    private readonly ITestOutputHelper _log;

    public CancellationTests(ITestOutputHelper log)
        : base((ActorSystem?)null, log) => _log = log;

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    // Reads `process`'s stderr into `stderr` until the line saying its replica job is accepted; returns the job id.
    private static async Task<string> JobAccepted(Process process, System.Text.StringBuilder stderr)
    {
        while (await process.StandardError.ReadLineAsync().WaitAsync(Timeout) is { } line)
        {
            stderr.AppendLine(line);
            if (line.StartsWith("di: job ", StringComparison.Ordinal) && line.Contains(": accepted, ", StringComparison.Ordinal))
            {
                return line["di: job ".Length..line.IndexOf(':', "di: job ".Length)];
            }
        }

        throw new Xunit.Sdk.XunitException($"the job was never accepted:\n{stderr}");
    }

    // `dotnet di.dll` with SIGINT and SIGTERM handled as a terminal would (env execs it: the pid is di's). A test run
    // from a background job (nohup, a CI runner's shell) inherits SIGINT ignored, and an ignored signal stays ignored
    // across exec: the Ctrl-C these tests send would never reach di.
    private static ProcessStartInfo SignalledDi()
    {
        var start = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("--default-signal=INT,TERM");
        start.ArgumentList.Add("dotnet");
        return start;
    }

    private static async Task Signal(Process process, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public async Task A_cluster_client_signalled_mid_job_exits_at_once_writes_nothing_and_its_job_is_cancelled(string signal, int code)
    {
        var input = Path.Combine(_folder, "rows.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [1000, 16], dtype: ScalarType.Int64) });
        var log = new LogLines();
        await using var nodes = await LocalCluster.StartAsync(
            2, _ => ["--devices", "cpu", "--model", DiRunner.TinyClassifier, "--task", "classify", "--verbose"], log, CancellationToken.None, forwardStderr: true);
        await using var member = await ClusterMember.JoinAsync(nodes);

        var output = Path.Combine(_folder, "out.safetensors");
        var start = SignalledDi();
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "infer", "--join", nodes.Seed, "--mode", "replica", "--task", "classify",
                     "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output, "--max-batch-size", "1" })
        {
            start.ArgumentList.Add(arg);
        }

        using var client = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(client);
        var stdout = client.StandardOutput.ReadToEndAsync();
        var stderr = new System.Text.StringBuilder();

        // The job's home has handed its 1000 batches out: the job runs on the nodes.
        var jobId = await JobAccepted(client, stderr);
        var rest = client.StandardError.ReadToEndAsync();
        Assert.False(client.HasExited, "the client ended before it was signalled");
        await Signal(client, signal);

        await client.WaitForExitAsync().WaitAsync(ExitBound);
        stderr.Append(await rest);
        var outText = await stdout;
        _log.WriteLine($"exit {client.ExitCode}\n{stderr}\nstdout: {outText}");
        Assert.Equal(code, client.ExitCode);
        Assert.False(File.Exists(output));

        // The job's coordinator cancels it (told so, or seeing its client go) before its rows are done; the gone client
        // costs a handful of connection attempts at most.
        var status = await member.JobReaches(jobId, JobState.Failed);
        _log.WriteLine(status.ToString());
        Assert.Equal("cancelled", status.Reason);
        Assert.True(status.RowsDone < status.RowsTotal, status.ToString());
        await Task.Delay(TimeSpan.FromSeconds(2));
        var all = log.Lines;
        _log.WriteLine(string.Join('\n', all.Where(l => l.Contains("job ", StringComparison.Ordinal) || l.Contains("data plane", StringComparison.Ordinal))));
        Assert.InRange(all.Count(l => l.Contains("data plane: connection to", StringComparison.Ordinal)), 0, 5);
    }

    [Fact]
    public async Task A_client_signalled_while_it_is_still_joining_stops_joining_and_exits_143()
    {
        // A port that accepts and never answers: the join would go on for its whole timeout (60 s here) and then fail
        // with exit 2. The client's first connection to it says it is joining.
        using var seed = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        seed.Start();
        var port = ((System.Net.IPEndPoint)seed.LocalEndpoint).Port;
        var input = Path.Combine(_folder, "rows.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [4, 8], dtype: ScalarType.Int64) });
        var start = SignalledDi();
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "infer", "--join", $"127.0.0.1:{port}", "--join-timeout", "60",
                     "--task", "classify", "--model", DiRunner.TinyClassifier, "--input-ids", input })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DI_CLUSTER_SECRET"] = new string('s', 40);
        using var client = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(client);
        var stderr = client.StandardError.ReadToEndAsync();
        using var joining = await seed.AcceptTcpClientAsync().WaitAsync(Timeout);
        Assert.False(client.HasExited, "the client ended before it was signalled");
        await Signal(client, "TERM");

        await client.WaitForExitAsync().WaitAsync(ExitBound);
        var err = await stderr;
        _log.WriteLine(err);
        Assert.Equal(143, client.ExitCode);
        Assert.Contains("di: cancelled", err, StringComparison.Ordinal);
        Assert.DoesNotContain("could not join", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ctrl_c_of_di_launch_exits_130_within_seconds_writes_nothing_and_leaves_no_node_running()
    {
        var input = Path.Combine(_folder, "rows.safetensors");
        // Rows enough that the job cannot end before the test has seen it accepted and found the nodes, however loaded the
        // machine (2000 were done in 8 s at a load average of 40, before the signal came): it is cancelled, never run out.
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [50000, 16], dtype: ScalarType.Int64) });

        // The nodes read this file (a name of this test only): it finds them among the processes afterwards.
        var config = Path.Combine(_folder, $"launch-{Guid.NewGuid():N}.conf");
        await File.WriteAllTextAsync(config, "distributed-inference.launch { }\n");
        var output = Path.Combine(_folder, "out.safetensors");
        var start = SignalledDi();
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "launch", "--num-processes", "2", "--config-file", config, "--", "infer", "--mode", "replica",
                     "--task", "classify", "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output, "--max-batch-size", "1" })
        {
            start.ArgumentList.Add(arg);
        }

        using var launch = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(launch);
        var stdout = launch.StandardOutput.ReadToEndAsync();
        var stderr = new System.Text.StringBuilder();

        // The job runs on both nodes now: signal the launch.
        await JobAccepted(launch, stderr);
        var rest = launch.StandardError.ReadToEndAsync();
        var nodes = NodesReading(config).Where(pid => pid != launch.Id).ToList();
        Assert.Equal(2, nodes.Count);
        await Signal(launch, "INT");

        await launch.WaitForExitAsync().WaitAsync(ExitBound);
        stderr.Append(await rest);
        await stdout;
        _log.WriteLine($"exit {launch.ExitCode}\n{stderr}");
        Assert.Equal(130, launch.ExitCode);
        Assert.False(File.Exists(output));

        // Its nodes were killed (or left) before it exited; a killed process is gone once its parent reaps it.
        await AwaitAssertAsync(
            () => Assert.True(!NodesReading(config).Any(), $"node processes still run: {string.Join(", ", NodesReading(config))} (the launch's were {string.Join(", ", nodes)})"),
            TimeSpan.FromMinutes(1),
            TimeSpan.FromMilliseconds(100));
    }

    // The processes whose command line names this file.
    private static IEnumerable<int> NodesReading(string file) =>
        Directory.EnumerateDirectories("/proc").Select(d => (Pid: int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0, Dir: d)).Where(p => p.Pid > 0).Where(p =>
        {
            try
            {
                return File.ReadAllText(Path.Combine(p.Dir, "cmdline")).Contains(file, StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        }).Select(p => p.Pid).ToList();
}
