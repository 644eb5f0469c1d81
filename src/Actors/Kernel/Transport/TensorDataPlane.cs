using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>
/// Bulk messages (micro-batches and outputs full of tensors) between nodes on TCP connections of their own, beside
/// Akka.Remote's: Akka's single connection per node pair then carries only control messages and heartbeats, which bulk
/// traffic can no longer delay, and tensors skip Akka's extra copies. One listener per actor system (cluster nodes with
/// <c>distributed-inference.data-plane.enabled</c>), bound to exactly the address Akka listens on; <see cref="Send"/>
/// (through <see cref="Transport"/>) opens one connection per peer node, chosen by the target's Akka address, and writes
/// frames in order. A message sent here is owned by the data plane:
/// the tensor a stage or device made (its rows, activation or batch results) is disposed once written.
/// If a connection fails, its messages go through Akka instead (nothing is lost to the data plane).
/// Every connection first runs TLS (when the cluster has a certificate) and the <see cref="DataPlaneHandshake"/>
/// (cluster secret); the accepting node then checks that the peer is a current member of its cluster. Frames carry
/// only bulk messages (<see cref="IBulkMessage"/>), to local actors, from senders on the authenticated peer; resources are bounded
/// by <see cref="DataPlaneLimits"/>.
/// </summary>
public sealed class TensorDataPlane : IExtension, IDisposable
{
    private static readonly ConditionalWeakTable<ActorSystem, StrongBox<bool>> Enabled = new();
    private const int MaximumCachedTargets = 10_000;

    /// <summary>Connection attempts in a row to one endpoint that may fail before it is dropped.</summary>
    internal const int MaximumConnectAttempts = 5;

    /// <summary>How long a dropped endpoint's messages go through Akka before the data plane tries it again.</summary>
    internal static readonly TimeSpan DroppedFor = TimeSpan.FromMinutes(10);

    private readonly ExtendedActorSystem _system;
    private readonly DistributedInferenceSerializer _serializer;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Address, DataPlaneConnection> _connections = new();
    private readonly ConcurrentDictionary<Address, string> _endpoints = new();
    private readonly ConcurrentDictionary<string, IActorRef> _targets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Address, EndpointFailure> _failures = new();
    private readonly LinkedList<CancellationTokenSource> _pending = new();
    private readonly Dictionary<string, int> _perPeer = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Socket, bool> _incoming = new();
    private int _authenticated;
    private int _threads;
    private long _framesSent;
    private long _framesReceived;
    private long _refused;
    private long _failedConnections;

    public TensorDataPlane(ExtendedActorSystem system)
    {
        _system = system;
        Log = Logging.GetLogger(system, "data-plane");
        _serializer = (DistributedInferenceSerializer)system.Serialization.FindSerializerForType(typeof(IWireMessage));
        var config = system.Settings.Config;
        Limits = DataPlaneLimits.From(config);
        Security = ClusterSecurity.From(config);
        SelfAddress = system.Provider.DefaultAddress.ToString();
        var publicHost = config.GetString("akka.remote.dot-netty.tcp.public-hostname", string.Empty);
        var host = config.GetString("akka.remote.dot-netty.tcp.hostname", "127.0.0.1");
        var port = config.GetInt("distributed-inference.data-plane.port", 0);
        ListenAddress.RequireFree(host, port, "data plane");
        _listener = new TcpListener(ListenAddress.Resolve(host), port);
        try
        {
            _listener.Start();
        }
        catch (SocketException e)
        {
            throw new InvalidInputException($"data plane: cannot listen on {host}:{port} ({e.SocketErrorCode}: {e.Message})", e);
        }

        Endpoint = $"{(string.IsNullOrEmpty(publicHost) ? host : publicHost)}:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _ = AcceptAsync();
        system.SystemActorOf(DataPlaneDirectory.Props(this), DataPlaneDirectory.ActorName);
        system.RegisterOnTermination(Dispose);
        DataPlaneMetrics.Track(this);
    }

    /// <summary>host:port where this node receives bulk messages.</summary>
    public string Endpoint { get; }

    /// <summary>The address the listener is bound to (exactly the configured host's, never all interfaces unless configured so).</summary>
    public IPEndPoint LocalEndpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Frames written to other nodes so far.</summary>
    public long FramesSent => Interlocked.Read(ref _framesSent);

    /// <summary>Frames received from other nodes and delivered so far.</summary>
    public long FramesReceived => Interlocked.Read(ref _framesReceived);

    /// <summary>Incoming connections dropped so far: failed handshakes, non-members, over a limit, refused or malformed frames.</summary>
    public long ConnectionsRefused => Interlocked.Read(ref _refused);

    /// <summary>Outgoing connections that failed so far (each costs one attempt; an endpoint backs off between attempts).</summary>
    public long FailedConnections => Interlocked.Read(ref _failedConnections);

    /// <summary>Incoming connections open now (waiting in a handshake or authenticated).</summary>
    public int OpenConnections => _incoming.Count;

    /// <summary>The bounds this data plane applies.</summary>
    public DataPlaneLimits Limits { get; }

    internal ClusterSecurity Security { get; }

    internal ExtendedActorSystem System => _system;

    internal string SelfAddress { get; }

    internal long MaximumFrameSize => Limits.MaximumFrameSize;

    internal ILoggingAdapter Log { get; }

    internal DistributedInferenceSerializer Serializer => _serializer;

    /// <summary>This system's data plane, or null where there is none (a system without remoting, or disabled in config).</summary>
    public static TensorDataPlane? For(ActorSystem system) =>
        Enabled.GetValue(system, s => new StrongBox<bool>(
            s.Settings.Config.GetBoolean("distributed-inference.data-plane.enabled", false) && ((ExtendedActorSystem)s).Provider is Akka.Remote.IRemoteActorRefProvider)).Value
            ? system.WithExtension<TensorDataPlane, TensorDataPlaneProvider>()
            : null;

    /// <summary>
    /// Delivers <paramref name="message"/> to <paramref name="target"/> on its node's data plane, as if told by
    /// <paramref name="sender"/>: the connection is chosen by the target's address, and the node there is found by
    /// asking it over Akka for its endpoint (or from its own handshake, when it connected here first) and must prove,
    /// in the handshake, that it is that address. Returns at once; frames to one node keep their order. While the
    /// connection to that node backs off after a failure, and for a node without a data plane, the message goes
    /// through Akka (<see cref="Transport.SendByAkka"/>).
    /// </summary>
    public void Send(IActorRef target, object message, IActorRef? sender = null)
    {
        var address = target.Path.Address;
        if (_failures.TryGetValue(address, out var failure) && DateTime.UtcNow < failure.RetryAt)
        {
            Transport.SendByAkka(_system, target, message, sender);
            return;
        }

        while (true)
        {
            var connection = _connections.GetOrAdd(address, a => new DataPlaneConnection(this, a));
            if (connection.TryEnqueue(new Outgoing(target, message, sender)))
            {
                return;
            }

            // That connection failed or went idle and is closing; a new one will be opened.
            _connections.TryRemove(new KeyValuePair<Address, DataPlaneConnection>(address, connection));
        }
    }

    /// <summary>
    /// The data-plane endpoint of the node at <paramref name="address"/>: learnt from its handshake when it connected
    /// here, else asked of its <see cref="DataPlaneDirectory"/> over Akka (null when it does not answer in time: it
    /// has no data plane, or is gone).
    /// </summary>
    internal async Task<string?> EndpointOfAsync(Address address, CancellationToken cancellation)
    {
        if (_endpoints.TryGetValue(address, out var known))
        {
            return known;
        }

        try
        {
            var directory = _system.ActorSelection(new RootActorPath(address) / "system" / DataPlaneDirectory.ActorName);
            var answer = await directory.Ask<DataPlaneEndpoint>(GetDataPlaneEndpoint.Instance, Limits.HandshakeTimeout, cancellation);
            return answer.Endpoint;
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Takes <paramref name="endpoint"/> as where the node at <paramref name="address"/> listens (tests: a data plane that cannot be reached).</summary>
    internal void RememberEndpoint(Address address, string endpoint) => _endpoints[address] = endpoint;

    /// <summary>
    /// The node at <paramref name="address"/> left the cluster: its connection closes and its endpoint is forgotten, so
    /// a node that serves clients for a month holds a connection and a thread for its live peers only.
    /// </summary>
    internal void PeerGone(Address address)
    {
        _endpoints.TryRemove(address, out _);
        _failures.TryRemove(address, out _);
        if (_connections.TryRemove(address, out var connection))
        {
            connection.Close();
        }
    }

    /// <summary>Outgoing connections open now (one per peer node this node has sent bulk messages to and that is still there).</summary>
    public int OutgoingConnections => _connections.Count;

    /// <summary>Threads of this data plane running now: one per outgoing connection (its writer) and per authenticated incoming one (its reader).</summary>
    public int Threads => Volatile.Read(ref _threads);

    internal void ThreadStarted() => Interlocked.Increment(ref _threads);

    internal void ThreadEnded() => Interlocked.Decrement(ref _threads);

    /// <summary>Whether this data plane was stopped (its actor system terminated).</summary>
    public bool Disposed => _stopping.IsCancellationRequested;

    public void Dispose()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        _stopping.Cancel();
        _listener.Stop();
        foreach (var socket in _incoming.Keys)
        {
            socket.Dispose();
        }

        foreach (var connection in _connections.Values)
        {
            connection.Close();
        }
    }

    internal void Sent() => Interlocked.Increment(ref _framesSent);

    /// <summary>
    /// A connection to <paramref name="peer"/> failed before or while it was used: back off (1, 2, 4, 8 s) before
    /// the next attempt, and after <see cref="MaximumConnectAttempts"/> failures in a row drop the endpoint (its
    /// messages go through Akka for <see cref="DroppedFor"/>). Returns whether it was just dropped.
    /// </summary>
    internal (int Failures, bool Dropped) Failed(Address peer)
    {
        Interlocked.Increment(ref _failedConnections);
        var now = DateTime.UtcNow;
        var failure = _failures.AddOrUpdate(
            peer,
            _ => new EndpointFailure(1, now + Backoff(1)),
            (_, old) => old.Count >= MaximumConnectAttempts ? old : new EndpointFailure(old.Count + 1, now + Backoff(old.Count + 1)));
        return (failure.Count, failure.Count >= MaximumConnectAttempts);
    }

    /// <summary>A connection to <paramref name="peer"/> was authenticated: its failures are forgotten.</summary>
    internal void Connected(Address peer) => _failures.TryRemove(peer, out _);

    private static TimeSpan Backoff(int failures) =>
        failures >= MaximumConnectAttempts ? DroppedFor : TimeSpan.FromSeconds(Math.Pow(2, failures - 1));

    internal void Forget(DataPlaneConnection connection) =>
        _connections.TryRemove(new KeyValuePair<Address, DataPlaneConnection>(connection.Peer, connection));

    /// <summary>
    /// Waits (at most until <paramref name="cancellation"/>) until <paramref name="address"/> is a Joining, WeaklyUp
    /// or Up member of this node's cluster: a node that has just joined may not have reached this node's view yet.
    /// A system without the cluster provider has no members to check.
    /// </summary>
    internal async Task<bool> IsMemberAsync(string address, CancellationToken cancellation)
    {
        if (_system.Provider is not Akka.Cluster.ClusterActorRefProvider)
        {
            return true;
        }

        var cluster = Akka.Cluster.Cluster.Get(_system);
        while (true)
        {
            if (cluster.State.Members.Any(m => m.Status is MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up && m.Address.ToString() == address))
            {
                return true;
            }

            try
            {
                await Task.Delay(50, cancellation);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }

    /// <summary>Client or server TLS on <paramref name="stream"/> with the cluster certificate, accepting only the same certificate.</summary>
    internal async Task<Stream> SecureAsync(Stream stream, bool server, CancellationToken cancellation)
    {
        if (Security.Certificate is null)
        {
            return stream;
        }

        var tls = new SslStream(stream, leaveInnerStreamOpen: false, (_, certificate, _, _) => Security.IsClusterCertificate(certificate));
        if (server)
        {
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = Security.Certificate, ClientCertificateRequired = true }, cancellation);
        }
        else
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "distributed-inference", ClientCertificates = [Security.Certificate] }, cancellation);
        }

        return tls;
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                var socket = await _listener.AcceptSocketAsync(_stopping.Token);
                _ = AuthenticateAsync(socket);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopping.
        }
    }

    // No thread and a few hundred bytes per connection until it proves itself; at most MaximumPendingHandshakes wait
    // (a newer one pushes the oldest out), each for at most HandshakeTimeout.
    private async Task AuthenticateAsync(Socket socket)
    {
        _incoming[socket] = true;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        deadline.CancelAfter(Limits.HandshakeTimeout);
        LinkedListNode<CancellationTokenSource> waiting;
        lock (_pending)
        {
            while (_pending.Count >= Limits.MaximumPendingHandshakes)
            {
                _pending.First!.Value.Cancel();
                _pending.RemoveFirst();
            }

            waiting = _pending.AddLast(deadline);
        }

        var remote = socket.RemoteEndPoint;
        string? peer = null;
        try
        {
            socket.NoDelay = true;
            var stream = await SecureAsync(new NetworkStream(socket, ownsSocket: true), server: true, deadline.Token);
            var (address, endpoint) = await DataPlaneHandshake.AcceptAsync(stream, Security.Secret, SelfAddress, deadline.Token);
            if (!await IsMemberAsync(address, deadline.Token))
            {
                throw new System.Security.Authentication.AuthenticationException($"{address} is not a member of this cluster");
            }

            lock (_pending)
            {
                if (waiting.List is not null)
                {
                    _pending.Remove(waiting);
                }

                var count = _perPeer.GetValueOrDefault(address);
                if (count >= Limits.MaximumConnectionsPerPeer || _authenticated >= Limits.MaximumConnections)
                {
                    throw new InvalidOperationException($"connection limit reached ({count} from {address}, {_authenticated} in all)");
                }

                _perPeer[address] = count + 1;
                _authenticated++;
                peer = address;
            }

            var authenticated = Address.Parse(address);
            _endpoints[authenticated] = endpoint;
            new Thread(() => Receive(socket, stream, address, authenticated)) { IsBackground = true, Name = $"data-plane from {address}" }.Start();
        }
        catch (Exception e)
        {
            lock (_pending)
            {
                if (waiting.List is not null)
                {
                    _pending.Remove(waiting);
                }
            }

            if (peer is not null)
            {
                Release(peer);
            }

            Interlocked.Increment(ref _refused);
            if (!_stopping.IsCancellationRequested)
            {
                Log.Warning("data plane: connection from {0} refused: {1}", remote, e is OperationCanceledException ? $"no handshake within {Limits.HandshakeTimeout.TotalSeconds:0.#} s" : e.Message);
            }

            socket.Dispose();
            _incoming.TryRemove(socket, out _);
        }
    }

    private void Release(string peer)
    {
        lock (_pending)
        {
            _authenticated--;
            if (--_perPeer[peer] == 0)
            {
                _perPeer.Remove(peer);
            }
        }
    }

    // On its own thread (at most MaximumConnections of them): frames are read with blocking calls straight into the
    // tensors they carry, with the idle timeout between frames and the read timeout inside one.
    private void Receive(Socket socket, Stream stream, string peerKey, Address peer)
    {
        ThreadStarted();
        var idle = (int)Math.Min(int.MaxValue, Limits.IdleTimeout.TotalMilliseconds);
        var read = (int)Math.Min(int.MaxValue, Limits.ReadTimeout.TotalMilliseconds);
        var reader = new DataPlaneFrameReader(new BufferedStream(stream, 1 << 16), Limits.MaximumFrameSize, Limits.ReadTimeout, Limits.MinimumBytesPerSecond, inFrame => socket.ReceiveTimeout = inFrame ? read : idle);
        IActorRef? target = null;
        IActorRef? sender = null;
        void Check(string targetPath, string senderPath, string manifest)
        {
            if (!_serializer.Registry.IsBulk(manifest))
            {
                throw new BadFrameException($"'{manifest}' does not travel on the data plane");
            }

            target = Resolve(targetPath);
            if (target is not IInternalActorRef { IsLocal: true })
            {
                throw new BadFrameException($"target {targetPath} is not on this node");
            }

            sender = senderPath.Length == 0 ? ActorRefs.NoSender
                : ActorPath.TryParse(senderPath, out var path) && path.Address.Equals(peer) ? Resolve(senderPath)
                : throw new BadFrameException($"sender {senderPath} is not on the authenticated peer {peer}");
        }

        try
        {
            while (reader.Next(_serializer, Check) is var (_, _, message))
            {
                Interlocked.Increment(ref _framesReceived);
                DataPlaneMetrics.Read(reader.LastFrameBytes);
                target!.Tell(message, sender);
            }
        }
        catch (Exception e) when (!_stopping.IsCancellationRequested)
        {
            // A malformed or refused frame or a broken connection: drop the connection (the sender falls back to Akka), keep the node.
            Interlocked.Increment(ref _refused);
            Log.Warning("data plane: connection from {0} dropped: {1}", peer, e.Message);
        }
        catch (Exception)
        {
            // Stopping.
        }
        finally
        {
            stream.Dispose();
            _incoming.TryRemove(socket, out _);
            Release(peerKey);
            ThreadEnded();
        }
    }

    private IActorRef Resolve(string path)
    {
        if (_targets.TryGetValue(path, out var known))
        {
            return known;
        }

        if (_targets.Count >= MaximumCachedTargets)
        {
            _targets.Clear();
        }

        return _targets.GetOrAdd(path, p => _system.Provider.ResolveActorRef(p));
    }

    private sealed record EndpointFailure(int Count, DateTime RetryAt);
}

/// <summary>One message on its way out: to whom, what, and from whom.</summary>
internal readonly record struct Outgoing(IActorRef Target, object Message, IActorRef? Sender);

public sealed class TensorDataPlaneProvider : ExtensionIdProvider<TensorDataPlane>
{
    public override TensorDataPlane CreateExtension(ExtendedActorSystem system) => new(system);
}
