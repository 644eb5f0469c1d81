using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// N <c>di node</c> processes on 127.0.0.1, the first one the seed, each on a free port: the seed first, then the
/// others joining it. The first node that fails to start ends the start at once, naming the node and its error line.
/// Disposing sends them SIGTERM (they leave the cluster) and kills whatever has not exited after a grace period.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(15);

    private readonly List<Process> _processes = [];

    private LocalCluster(string seed) => Seed = seed;

    /// <summary>host:port of the first node.</summary>
    public string Seed { get; }

    /// <summary>The node processes, in start order (the first is the seed and the oldest member).</summary>
    public IReadOnlyList<Process> Processes => _processes;

    /// <param name="forwardStderr">Also copy every line the nodes write on stderr to <paramref name="log"/>, prefixed <c>[node i]</c>.</param>
    /// <param name="secret">The cluster secret, given to the nodes in their environment (<c>DI_CLUSTER_SECRET</c>).</param>
    public static async Task<LocalCluster> StartAsync(int processes, Func<int, IReadOnlyList<string>> nodeArguments, TextWriter log, CancellationToken cancellation, bool forwardStderr = false, string? secret = null)
    {
        if (processes <= 0)
        {
            throw new InvalidInputException($"--num-processes must be positive, got {processes}");
        }

        var ports = FreePorts(processes);
        var cluster = new LocalCluster($"127.0.0.1:{ports[0]}");
        try
        {
            Task Start(int i)
            {
                string[] args = ["node", "--host", "127.0.0.1", "--port", ports[i].ToString(System.Globalization.CultureInfo.InvariantCulture), .. (i == 0 ? [] : new[] { "--join", cluster.Seed }), .. nodeArguments(i)];
                var start = DiStartInfo(args);
                if (secret is not null)
                {
                    start.Environment[Actors.Security.ClusterSecurity.SecretVariable] = secret;
                }

                var process = Process.Start(start) ?? throw new InvalidOperationException("could not start a di node process");
                cluster._processes.Add(process);
                return WaitUntilUp(process, i, log, forwardStderr, cancellation);
            }

            await log.WriteLineAsync($"di launch: starting node 0 (the seed) at {cluster.Seed}");
            await Start(0);
            if (processes > 1)
            {
                await log.WriteLineAsync($"di launch: starting nodes 1-{processes - 1}, joining {cluster.Seed}");
            }

            var up = Enumerable.Range(1, processes - 1).Select(Start).ToList();
            while (up.Count > 0)
            {
                var done = await Task.WhenAny(up);
                up.Remove(done);
                await done;
            }

            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes.Where(p => !p.HasExited))
        {
            _ = Kill(process.Id, Sigterm);
        }

        foreach (var process in _processes)
        {
            using var grace = new CancellationTokenSource(StopGrace);
            try
            {
                await process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
            }

            process.Dispose();
        }
    }

    // The di program that runs this code: the apphost itself, or dotnet with di.dll.
    private static ProcessStartInfo DiStartInfo(IEnumerable<string> args)
    {
        var self = Environment.ProcessPath ?? "dotnet";
        var start = Path.GetFileNameWithoutExtension(self) == "di"
            ? new ProcessStartInfo(self)
            : new ProcessStartInfo(Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "di.dll") } };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        return start;
    }

    private static async Task WaitUntilUp(Process process, int index, TextWriter log, bool forwardStderr, CancellationToken cancellation)
    {
        var errors = new List<string>();
        var synchronizedLog = TextWriter.Synchronized(log);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (errors)
                {
                    errors.Add(e.Data);
                }

                if (forwardStderr)
                {
                    synchronizedLog.WriteLine($"[node {index}] {e.Data}");
                }
            }
        };
        process.BeginErrorReadLine();
        string LastError()
        {
            lock (errors)
            {
                return errors.LastOrDefault(e => e.Length > 0) ?? (process.HasExited ? $"exit code {process.ExitCode}" : "nothing on stderr");
            }
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(StartTimeout);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.StartsWith("di node: up at", StringComparison.Ordinal))
                {
                    await log.WriteLineAsync($"di launch: node {index} {line["di node: ".Length..]}");
                    _ = DrainAsync(process.StandardOutput);
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new JobFailedException($"node {index} was not up within {StartTimeout.TotalSeconds:F0} s (its last line on stderr: {LastError()})");
        }

        await process.WaitForExitAsync(CancellationToken.None);
        throw new InvalidInputException($"node {index} did not start: {LastError()}");
    }

    private static async Task DrainAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is not null)
        {
        }
    }

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        listeners.ForEach(l => l.Start());
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        listeners.ForEach(l => l.Stop());
        return ports;
    }

    private const int Sigterm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
