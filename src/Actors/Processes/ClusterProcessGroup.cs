using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using DistributedInference.Actors.Kernel;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Models;

namespace DistributedInference.Actors.Processes;

/// <summary>
/// The processes of one <c>di launch</c> as an Akka cluster: process 0 listens at MASTER_ADDR:MASTER_PORT and is the
/// seed the others join (with the launch's cluster secret, <see cref="ClusterSecurity.SecretVariable"/>); each member
/// has the role <c>process-i</c>. A <see cref="ProcessGroupCoordinator"/> on process 0 holds the barriers and
/// gathers: every process sends it its part and waits for all of them. Parts go through Akka.Remote, so one round's
/// parts together must fit <c>akka.remote.dot-netty.tcp.maximum-frame-size</c> (64 MiB by default); a larger round
/// fails with <see cref="InvalidOperationException"/> on every process, naming the limit. A process waiting in a
/// round fails (<see cref="ProcessGroupTimeoutException"/>) when a process that has not arrived leaves the cluster (it
/// exited: after <see cref="LeftGrace"/>, so that a launcher sees the leaver's own exit, the cause, before the exits it
/// causes) or the cluster reports it unreachable (it crashed, or its machine is cut off: a few seconds). Disposing
/// leaves the cluster: process 0 last, once the others are gone (or after <see cref="LeaveTimeout"/>).
/// </summary>
public sealed class ClusterProcessGroup : IProcessGroup, IDisposable, IAsyncDisposable
{
    /// <summary>The actor systems' name (all processes of a group use it).</summary>
    public const string SystemName = "di-process-group";

    /// <summary>How long process 0 waits for the others to leave before it leaves itself.</summary>
    public static readonly TimeSpan LeaveTimeout = TimeSpan.FromSeconds(15);

    private const long FrameMargin = 64 * 1024;

    /// <summary>
    /// How long a process that left the cluster (rather than became unreachable) is given to end before a process
    /// waiting for it in a round fails: a leaving process exits a moment after the others see it go.
    /// </summary>
    public static readonly TimeSpan LeftGrace = TimeSpan.FromSeconds(3);

    private static readonly TimeSpan LostCheck = TimeSpan.FromMilliseconds(250);

    private readonly ActorSystem _system;
    private readonly int _rank;
    private readonly ICanTell _coordinator;
    private readonly long _maximumBytes;
    private int _round;
    private int _disposed;

    private ClusterProcessGroup(ActorSystem system, int rank, int size, ICanTell coordinator, long maximumBytes)
    {
        _system = system;
        _rank = rank;
        Size = size;
        _coordinator = coordinator;
        _maximumBytes = maximumBytes;
    }

    /// <inheritdoc />
    public int Size { get; }

    /// <summary>This process's actor system (a member of the group's cluster).</summary>
    public ActorSystem System => _system;

    /// <summary>
    /// Starts this process's member of the group and returns once all <paramref name="size"/> processes are Up in
    /// the cluster. Process 0 listens at <paramref name="mainHost"/>:<paramref name="mainPort"/>; the others on
    /// <paramref name="host"/> (null: see <see cref="ProcessEnvironment.HostVariable"/>) at a free port.
    /// </summary>
    /// <exception cref="InvalidInputException">Bad arguments, no secret off loopback, or the port is taken.</exception>
    /// <exception cref="ProcessGroupTimeoutException">Not every process joined within <paramref name="joinTimeout"/>.</exception>
    public static async Task<ClusterProcessGroup> StartAsync(int rank, int size, string mainHost, int mainPort, string? secret, TimeSpan joinTimeout, string? host = null, string? configFile = null)
    {
        if (size <= 0 || rank < 0 || rank >= size)
        {
            throw new InvalidInputException($"{ProcessEnvironment.Rank}={rank} {ProcessEnvironment.WorldSize}={size}: the rank must be in 0..{size - 1}");
        }

        if (mainPort is <= 0 or > 65535)
        {
            throw new InvalidInputException($"{ProcessEnvironment.MasterPort}={mainPort}: not a port");
        }

        var myHost = rank == 0 ? mainHost : host ?? DefaultHost(mainHost);
        // A process stopped by di launch (SIGTERM) exits at once instead of leaving first: the others are stopped too.
        // Warnings are off: the others retry joining while process 0 starts, and Akka warns at each retry.
        var config = ConfigurationFactory.ParseString("""
            akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
            akka.loglevel = ERROR
            """).WithFallback(NodeServices.Configure(myHost, rank == 0 ? mainPort : 0, [Role(rank)], [$"{mainHost}:{mainPort}"], secret, configFile: configFile, systemName: SystemName));
        var seed = config.GetStringList("akka.cluster.seed-nodes")[0];
        if (rank == 0)
        {
            ListenAddress.RequireFree(myHost, mainPort, ProcessEnvironment.MasterPort);
        }

        var maximumBytes = config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size", 64 * 1024 * 1024) ?? (64 * 1024 * 1024);
        var system = NodeServices.StartSystem(config, SystemName);
        try
        {
            var gate = MembershipGate.For(system)!;
            ICanTell coordinator = rank == 0
                ? system.ActorOf(ProcessGroupCoordinator.Props(size, maximumBytes - FrameMargin), ProcessGroupCoordinator.ActorName)
                : system.ActorSelection($"{seed}/user/{ProcessGroupCoordinator.ActorName}");
            // A process whose proof of the launch's secret is refused is downed: it says so instead of waiting out its timeout.
            var allUp = WhenAllUp(system, rank, size, joinTimeout);
            await Task.WhenAny(allUp, gate.Admitted.ContinueWith(_ => { }, TaskScheduler.Default));
            if (gate.Admitted.IsFaulted)
            {
                throw gate.Admitted.Exception!.InnerException!;
            }

            await allUp;
            await gate.Admitted.WaitAsync(joinTimeout);
            return new ClusterProcessGroup(system, rank, size, coordinator, maximumBytes - FrameMargin);
        }
        catch
        {
            await system.Terminate();
            throw;
        }
    }

    /// <inheritdoc />
    public void Barrier(int rank, TimeSpan timeout) => Exchange(rank, [], timeout);

    /// <inheritdoc />
    public IReadOnlyList<object?> AllGather(int rank, object? part, TimeSpan timeout)
    {
        var bytes = ProcessPayload.Encode(part, part?.GetType() ?? typeof(object));
        if (bytes.Length > _maximumBytes)
        {
            throw new InvalidOperationException($"process {rank}'s part of a gather is {bytes.Length} bytes, more than the {_maximumBytes} one message may carry (akka.remote.dot-netty.tcp.maximum-frame-size): gather smaller parts, or save them to files");
        }

        return Exchange(rank, bytes, timeout).Select(p => ProcessPayload.Decode(p, part?.GetType() ?? typeof(object))).ToList();
    }

    private IReadOnlyList<byte[]> Exchange(int rank, byte[] part, TimeSpan timeout)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var round = Interlocked.Increment(ref _round);
        object answer;
        try
        {
            // While waiting, a process the cluster reports unreachable (it crashed, or its machine is gone) will not
            // arrive: fail now rather than at the timeout.
            var waited = global::System.Diagnostics.Stopwatch.StartNew();
            var ask = AskAsync(new ProcessArrived(round, rank, part), timeout);
            var leftSince = new Dictionary<int, TimeSpan>();
            while (!ask.Wait(LostCheck, CancellationToken.None))
            {
                var lost = Lost(rank, round, leftSince, waited.Elapsed);
                if (lost.Count > 0)
                {
                    throw new ProcessGroupTimeoutException(rank, waited.Elapsed, lost, "gone from the group: exited, stopped, or cut off from this process");
                }
            }

            answer = ask.GetAwaiter().GetResult();
        }
        catch (AggregateException e) when (e.InnerException is AskTimeoutException)
        {
            throw TimedOut(rank, round, timeout);
        }
        catch (AskTimeoutException)
        {
            throw TimedOut(rank, round, timeout);
        }

        return answer switch
        {
            ProcessesReleased released => released.Parts,
            ProcessRoundRefused refused => throw new InvalidOperationException(refused.Reason),
            _ => throw new InvalidOperationException($"unexpected answer {answer.GetType().Name} from the main process"),
        };
    }

    // The processes that left the cluster (for LeftGrace, noted in leftSince) or that it reports unreachable, without
    // having arrived at this round (one that arrived may have left with its answer while ours is still on its way).
    private IReadOnlyList<int> Lost(int rank, int round, Dictionary<int, TimeSpan> leftSince, TimeSpan now)
    {
        var state = Akka.Cluster.Cluster.Get(_system).State;
        var present = state.Members
            .Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining && !state.Unreachable.Contains(m))
            .SelectMany(m => m.Roles)
            .ToHashSet();
        var unreachable = state.Unreachable.SelectMany(m => m.Roles).ToHashSet();
        var gone = new List<int>();
        foreach (var r in Enumerable.Range(0, Size).Where(r => !present.Contains(Role(r))))
        {
            var since = leftSince.TryGetValue(r, out var first) ? first : leftSince[r] = now;
            if (unreachable.Contains(Role(r)) || now - since >= LeftGrace)
            {
                gone.Add(r);
            }
        }

        if (gone.Count == 0 || (gone.Contains(0) && rank != 0))
        {
            return gone.Contains(0) ? [0] : [];
        }

        try
        {
            var arrivals = (ProcessArrivals)AskAsync(new GetProcessArrivals(round), TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
            return gone.Except(arrivals.Ranks).ToList();
        }
        catch (AskTimeoutException)
        {
            return [0];
        }
    }

    private Task<object> AskAsync(object message, TimeSpan timeout) => _coordinator switch
    {
        IActorRef actor => actor.Ask(message, timeout),
        ActorSelection selection => selection.Ask(message, timeout),
        _ => throw new InvalidOperationException("no coordinator"),
    };

    private ProcessGroupTimeoutException TimedOut(int rank, int round, TimeSpan timeout)
    {
        try
        {
            var arrivals = (ProcessArrivals)AskAsync(new GetProcessArrivals(round), TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
            return new ProcessGroupTimeoutException(rank, timeout, Enumerable.Range(0, Size).Except(arrivals.Ranks).ToList());
        }
        catch (AskTimeoutException)
        {
            return new ProcessGroupTimeoutException(rank, timeout, [0], "the main process does not answer");
        }
    }

    /// <summary>Leaves the cluster and stops the actor system (process 0 once the others have left).</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <inheritdoc cref="Dispose"/>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var cluster = Akka.Cluster.Cluster.Get(_system);
        if (_rank == 0)
        {
            var deadline = DateTime.UtcNow + LeaveTimeout;
            while (DateTime.UtcNow < deadline && cluster.State.Members.Any(m => !m.Address.Equals(cluster.SelfAddress) && m.Status != MemberStatus.Removed))
            {
                await Task.Delay(100);
            }
        }

        await CoordinatedShutdown.Get(_system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
    }

    private static string Role(int rank) => "process-" + rank.ToString(CultureInfo.InvariantCulture);

    private static async Task WhenAllUp(ActorSystem system, int rank, int size, TimeSpan timeout)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var up = cluster.State.Members.Where(m => m.Status == MemberStatus.Up).SelectMany(m => m.Roles).ToHashSet();
            var missing = Enumerable.Range(0, size).Where(r => !up.Contains(Role(r))).ToList();
            if (missing.Count == 0)
            {
                return;
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new ProcessGroupTimeoutException(rank, timeout, missing, "joining the group's cluster");
            }

            await Task.Delay(50);
        }
    }

    private static string DefaultHost(string mainHost)
    {
        var variable = Environment.GetEnvironmentVariable(ProcessEnvironment.HostVariable);
        if (!string.IsNullOrWhiteSpace(variable))
        {
            return variable.Trim();
        }

        if (ClusterSecurity.IsLoopback(mainHost))
        {
            return mainHost;
        }

        // The local address of the route to the main process (a UDP "connection" sends nothing).
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Connect(mainHost, 9);
        return ((IPEndPoint)socket.LocalEndPoint!).Address.ToString();
    }
}
