using System.Diagnostics;
using DistributedInference.Host.Cluster;
using DistributedInference.Models.Loading;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// Ctrl-C / SIGTERM of a cluster client mid-job: the client exits within seconds with 130 / 143 and writes nothing,
/// and the cluster cancels the job (its coordinator watches the client) instead of computing it for nobody, without
/// retrying a connection to the gone client once per message.
/// </summary>
public sealed class CancellationTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private readonly string _folder = Directory.CreateTempSubdirectory("di-cancel-").FullName;
    private readonly ITestOutputHelper _log;

    public CancellationTests(ITestOutputHelper log) => _log = log;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public async Task A_cluster_client_signalled_mid_job_exits_at_once_writes_nothing_and_its_job_is_cancelled(string signal, int code)
    {
        var input = Path.Combine(_folder, "rows.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [1000, 16], dtype: ScalarType.Int64) });
        var config = Path.Combine(_folder, "info.conf");
        await File.WriteAllTextAsync(config, "akka.loglevel = INFO\n");
        var log = new StringWriter();
        await using var nodes = await LocalCluster.StartAsync(
            2, _ => ["--devices", "cpu", "--model", DiRunner.TinyClassifier, "--task", "classify", "--verbose", "--config-file", config], TextWriter.Synchronized(log), CancellationToken.None, forwardStderr: true);
        string[] Lines() => log.ToString().Split('\n');

        var output = Path.Combine(_folder, "out.safetensors");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "infer", "--join", nodes.Seed, "--mode", "replica", "--task", "classify",
                     "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output, "--max-batch-size", "1" })
        {
            start.ArgumentList.Add(arg);
        }

        using var client = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(client);
        var stdout = client.StandardOutput.ReadToEndAsync();
        var stderr = client.StandardError.ReadToEndAsync();
        await WaitUntil(() => Lines().Any(l => l.Contains("coordinated here", StringComparison.Ordinal)) || client.HasExited, "no node coordinates the job");
        Assert.False(client.HasExited, "the client ended before it was signalled");
        await Task.Delay(TimeSpan.FromSeconds(1));

        var clock = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", [$"-{signal}", client.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await client.WaitForExitAsync().WaitAsync(Timeout);
        var exited = clock.Elapsed;
        var outText = await stdout;
        var err = await stderr;
        _log.WriteLine($"exit {client.ExitCode} after {exited.TotalSeconds:F1} s\n{err}\nstdout: {outText}");
        Assert.Equal(code, client.ExitCode);
        Assert.True(exited < TimeSpan.FromSeconds(5), $"exited {exited.TotalSeconds:F1} s after SIG{signal}");
        Assert.False(File.Exists(output));

        // The job's coordinator cancels it (told so, or seeing its client go); the gone client costs a handful of connection attempts at most.
        await WaitUntil(() => Lines().Any(l => l.Contains("cancelled by its client", StringComparison.Ordinal) || l.Contains("is gone; cancelling the job", StringComparison.Ordinal)), "the job was not cancelled");
        await Task.Delay(TimeSpan.FromSeconds(2));
        var all = Lines();
        _log.WriteLine(string.Join('\n', all.Where(l => l.Contains("job ", StringComparison.Ordinal) || l.Contains("data plane", StringComparison.Ordinal))));
        Assert.InRange(all.Count(l => l.Contains("data plane: connection to", StringComparison.Ordinal)), 0, 5);
    }

    [Fact]
    public async Task A_client_signalled_while_it_is_still_joining_stops_joining_and_exits_143()
    {
        // Nothing listens at the address: the join would go on for its whole timeout (60 s here) and then fail with exit 2.
        var input = Path.Combine(_folder, "rows.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [4, 8], dtype: ScalarType.Int64) });
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "infer", "--join", $"127.0.0.1:{DiRunner.FreePort()}", "--join-timeout", "60",
                     "--task", "classify", "--model", DiRunner.TinyClassifier, "--input-ids", input })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DI_CLUSTER_SECRET"] = new string('s', 40);
        using var client = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(client);
        var stderr = client.StandardError.ReadToEndAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.False(client.HasExited, "the client ended before it was signalled");
        using (var kill = Process.Start("kill", ["-TERM", client.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await client.WaitForExitAsync().WaitAsync(Timeout);
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
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [2000, 16], dtype: ScalarType.Int64) });

        // The nodes read this file (a name of this test only): it finds them among the processes afterwards.
        var config = Path.Combine(_folder, $"launch-{Guid.NewGuid():N}.conf");
        await File.WriteAllTextAsync(config, "distributed-inference.launch { }\n");
        var output = Path.Combine(_folder, "out.safetensors");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "launch", "--num-processes", "2", "--config-file", config, "--", "infer", "--mode", "replica",
                     "--task", "classify", "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output, "--max-batch-size", "1" })
        {
            start.ArgumentList.Add(arg);
        }

        using var launch = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(launch);
        var stdout = launch.StandardOutput.ReadToEndAsync();
        var stderr = new System.Text.StringBuilder();
        var clock = new Stopwatch();
        while (await launch.StandardError.ReadLineAsync().WaitAsync(Timeout) is { } line)
        {
            stderr.AppendLine(line);
            if (!clock.IsRunning && line.StartsWith("di: 2 node(s)", StringComparison.Ordinal))
            {
                // The job runs on both nodes now.
                await Task.Delay(TimeSpan.FromSeconds(1));
                clock.Start();
                using var kill = Process.Start("kill", ["-INT", launch.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                await kill.WaitForExitAsync();
            }
        }

        await launch.WaitForExitAsync().WaitAsync(Timeout);
        var exited = clock.Elapsed;
        await stdout;
        _log.WriteLine($"exit {launch.ExitCode} after {exited.TotalSeconds:F1} s\n{stderr}");
        Assert.True(clock.IsRunning, stderr.ToString());
        Assert.Equal(130, launch.ExitCode);
        Assert.True(exited < TimeSpan.FromSeconds(5), $"exited {exited.TotalSeconds:F1} s after SIGINT");
        Assert.False(File.Exists(output));
        await WaitUntil(() => !NodesReading(config).Any(), $"node processes still run: {string.Join(", ", NodesReading(config))}");
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

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(100);
        }
    }
}
