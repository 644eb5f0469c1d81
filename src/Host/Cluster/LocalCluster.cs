using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Akka.Actor;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// N <c>di node</c> processes on 127.0.0.1, the first one the seed, each on a free port: the seed first, then the
/// others joining it. The first node that fails to start ends the start at once, naming the node and its error line.
/// <see cref="LeaveAsync"/> stops them through a member of their cluster (quick); disposing sends what still
/// runs SIGTERM (they leave the cluster), and kills whatever has not exited after a grace period.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan LeaveGrace = TimeSpan.FromSeconds(10);

    private static readonly List<LocalCluster> Started = [];

    private readonly List<Process> _processes = [];

    private const string Host = "127.0.0.1";

    private readonly TextWriter _log;
    private readonly int[] _ports;

    private LocalCluster(int[] ports, TextWriter log)
    {
        _ports = ports;
        Seed = $"{Host}:{ports[0]}";
        _log = log;
        lock (Started)
        {
            Started.Add(this);
        }
    }

    /// <summary>host:port of the first node.</summary>
    public string Seed { get; }

    /// <summary>
    /// Kills at once every node process of every cluster this process started that still runs (a launch whose grace after
    /// Ctrl-C / SIGTERM is over exits without orphaning its nodes).
    /// </summary>
    public static void KillAll()
    {
        LocalCluster[] clusters;
        lock (Started)
        {
            clusters = [.. Started];
        }

        foreach (var cluster in clusters)
        {
            cluster.Kill();
        }
    }

    /// <summary>Kills this cluster's node processes that still run, at once (a cancelled launch: no leaving, no waiting).</summary>
    public void Kill()
    {
        foreach (var process in _processes.ToList())
        {
            try
            {
                process.Kill();
            }
            catch (InvalidOperationException)
            {
                // Exited in the meantime.
            }
        }

        foreach (var process in _processes.ToList())
        {
            try
            {
                process.WaitForExit(TimeSpan.FromSeconds(1));
            }
            catch (InvalidOperationException)
            {
                // Not started, or already disposed.
            }
        }
    }

    /// <summary>Each node's port (its Akka address is akka.tcp://distributed-inference@127.0.0.1:port), in start order.</summary>
    public IReadOnlyList<int> Ports => _ports;

    /// <summary>The node processes, in start order (the first is the seed and the oldest member).</summary>
    public IReadOnlyList<Process> Processes => _processes;

    /// <param name="forwardStderr">Also copy every line the nodes write on stderr to <paramref name="log"/>, prefixed <c>[node i]</c>.</param>
    /// <param name="secret">The cluster secret, given to the nodes in their environment (<c>DI_CLUSTER_SECRET</c>).</param>
    /// <param name="cpuThreads">libtorch's intra-op threads in each node (<c>OMP_NUM_THREADS</c>, see
    /// <see cref="Models.Runtime.CpuThreads.PerProcess"/>); null: each node's own default.</param>
    /// <param name="environment">More variables for every node's environment (OpenTelemetry's <c>OTEL_*</c>, say).</param>
    public static async Task<LocalCluster> StartAsync(
        int processes, Func<int, IReadOnlyList<string>> nodeArguments, TextWriter log, CancellationToken cancellation, bool forwardStderr = false, string? secret = null, int? cpuThreads = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        if (processes <= 0)
        {
            throw new InvalidInputException($"--num-processes must be positive, got {processes}");
        }

        // A free port can be taken by another program between finding it and the node binding it: then try new ports.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(processes, nodeArguments, log, cancellation, forwardStderr, secret, cpuThreads, environment);
            }
            catch (InvalidInputException e) when (attempt < 3 && e.Message.Contains("is already in use", StringComparison.Ordinal))
            {
                await log.WriteLineAsync($"di launch: {e.Message}; trying other ports");
            }
        }
    }

    private static async Task<LocalCluster> StartOnceAsync(
        int processes, Func<int, IReadOnlyList<string>> nodeArguments, TextWriter log, CancellationToken cancellation, bool forwardStderr, string? secret, int? cpuThreads,
        IReadOnlyDictionary<string, string>? environment)
    {
        var ports = FreePorts(processes);
        var cluster = new LocalCluster(ports, TextWriter.Synchronized(log));
        try
        {
            Task Start(int i)
            {
                string[] args = ["node", "--host", "127.0.0.1", "--port", ports[i].ToString(System.Globalization.CultureInfo.InvariantCulture), .. (i == 0 ? [] : new[] { "--join", cluster.Seed }), .. nodeArguments(i)];
                var start = DiStartInfo(args);
                foreach (var (name, value) in environment ?? new Dictionary<string, string>())
                {
                    start.Environment[name] = value;
                }

                if (secret is not null)
                {
                    start.Environment[Actors.Kernel.Membership.ClusterSecurity.SecretVariable] = secret;
                }

                if (cpuThreads is { } threads)
                {
                    start.Environment["OMP_NUM_THREADS"] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
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

    /// <summary>
    /// Stops the nodes through <paramref name="member"/>, a member of their cluster that stays until they are gone: it
    /// has the younger nodes leave (together), waits for their processes to exit, then does the same with the seed,
    /// saying what it waits for and how long it took. Gossip converges at once (every member still there is
    /// reachable), so each step takes about a second. A node whose process has not exited within
    /// <see cref="LeaveGrace"/> gets SIGTERM, then is killed after <see cref="StopGrace"/>.
    /// </summary>
    public async Task LeaveAsync(ActorSystem member)
    {
        var cluster = Akka.Cluster.Cluster.Get(member);
        var running = Running();
        var younger = running.Where(n => n.Index > 0).ToList();
        if (younger.Count > 0)
        {
            await LeaveAndWait(cluster, younger, $"node(s) {Names(younger)}");
        }

        if (running.Count > 0 && running[0].Index == 0)
        {
            await LeaveAndWait(cluster, [running[0]], "node 0 (the seed)");
        }
    }

    /// <summary>
    /// Stops the nodes that still run, saying what it waits for: the younger nodes leave first (SIGTERM, together), then
    /// the seed, so the seed does not leave under nodes that are still joined to it. A node still running after
    /// <see cref="StopGrace"/> is killed.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        var running = Running();
        var younger = running.Where(n => n.Index > 0).ToList();
        if (younger.Count > 0)
        {
            await TermAndWait(younger, $"node(s) {Names(younger)}");
        }

        if (running.Count > 0 && running[0].Index == 0)
        {
            await TermAndWait([running[0]], "node 0 (the seed)");
        }

        lock (Started)
        {
            Started.Remove(this);
        }

        _processes.ForEach(p => p.Dispose());
    }

    private List<(Process Process, int Index)> Running() =>
        _processes.Select((p, i) => (Process: p, Index: i)).Where(n => !n.Process.HasExited).ToList();

    private static string Names(IEnumerable<(Process Process, int Index)> nodes) => string.Join(", ", nodes.Select(n => n.Index));

    private async Task LeaveAndWait(Akka.Cluster.Cluster cluster, IReadOnlyList<(Process Process, int Index)> nodes, string what)
    {
        await _log.WriteLineAsync($"di launch: stopping {what}: leaving the cluster, waiting for {(nodes.Count == 1 ? "its process" : "their processes")} to exit");
        var clock = Stopwatch.StartNew();
        foreach (var node in nodes)
        {
            var address = cluster.State.Members.Select(m => m.Address).FirstOrDefault(a => a.Host == Host && a.Port == _ports[node.Index]);
            if (address is not null)
            {
                cluster.Leave(address);
            }
        }

        await Task.WhenAll(nodes.Select(n => Stop(n.Process, n.Index, LeaveGrace)));
        await _log.WriteLineAsync($"di launch: {what} exited in {clock.Elapsed.TotalSeconds:F1} s");
    }

    private async Task TermAndWait(IReadOnlyList<(Process Process, int Index)> nodes, string what)
    {
        await _log.WriteLineAsync($"di launch: stopping {what}: SIGTERM, waiting for {(nodes.Count == 1 ? "it" : "them")} to leave the cluster and exit");
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(nodes.Select(n => Stop(n.Process, n.Index, TimeSpan.Zero)));
        await _log.WriteLineAsync($"di launch: {what} exited in {clock.Elapsed.TotalSeconds:F1} s");
    }

    // Waits for the process to exit on its own for `before`, then sends SIGTERM and waits StopGrace, then kills it.
    private async Task Stop(Process process, int index, TimeSpan before)
    {
        if (before > TimeSpan.Zero && await Exited(process, before))
        {
            return;
        }

        if (before > TimeSpan.Zero)
        {
            await _log.WriteLineAsync($"di launch: node {index} still runs after {before.TotalSeconds:F0} s; SIGTERM");
        }

        if (!process.HasExited)
        {
            _ = Kill(process.Id, Sigterm);
        }

        if (!await Exited(process, StopGrace))
        {
            await _log.WriteLineAsync($"di launch: node {index} did not stop within {StopGrace.TotalSeconds:F0} s; killed");
            process.Kill(entireProcessTree: true);
        }
    }

    private static async Task<bool> Exited(Process process, TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
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
