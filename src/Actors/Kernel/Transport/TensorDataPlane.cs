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
/// opens one connection per remote endpoint and writes frames in order. A message sent here is owned by the data plane:
/// the tensor a stage or device made (its rows, activation or batch results) is disposed once written.
/// If a connection fails, its messages go through Akka instead (nothing is lost to the data plane).
/// Every connection first runs TLS (when the cluster has a certificate) and the <see cref="DataPlaneHandshake"/>
/// (cluster secret); the accepting node then checks that the peer is a current member of its cluster. Frames carry
/// only <see cref="DataPlaneMessages"/>, to local actors, from senders on the authenticated peer; resources are bounded
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
    private readonly ConcurrentDictionary<string, DataPlaneConnection> _connections = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IActorRef> _targets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, EndpointFailure> _failures = new(StringComparer.Ordinal);
    private readonly LinkedList<CancellationTokenSource> _pending = new();
    private readonly Dictionary<string, int> _perPeer = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Socket, bool> _incoming = new();
    private int _authenticated;
    private long _framesSent;
    private long _framesReceived;
    private long _refused;
    private long _failedConnections;

    public TensorDataPlane(ExtendedActorSystem system)
    {
        _system = system;
        Log = Logging.GetLogger(system, "data-plane");
        _serializer = (DistributedInferenceSerializer)system.Serialization.FindSerializerForType(typeof(Pipeline.MicroBatch));
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
        system.RegisterOnTermination(Dispose);
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
    /// Tells <paramref name="target"/> through the data plane at <paramref name="endpoint"/> when <paramref name="system"/>
    /// has one, the endpoint is another node's and the message is one the data plane carries
    /// (<see cref="DataPlaneMessages"/>); otherwise through Akka. All messages from one sender to one target
    /// should take the same way, so they keep their order.
    /// </summary>
    public static void Tell(ActorSystem system, string? endpoint, IActorRef target, object message, IActorRef? sender = null)
    {
        var plane = endpoint is null || !DataPlaneMessages.Allowed(message) ? null : For(system);
        if (plane is not null && endpoint != plane.Endpoint)
        {
            plane.Send(endpoint!, target, message, sender);
        }
        else
        {
            target.Tell(message, sender ?? ActorRefs.NoSender);
        }
    }

    /// <summary>
    /// Delivers <paramref name="message"/> to <paramref name="target"/> on the node whose data plane listens at
    /// <paramref name="endpoint"/>, as if told by <paramref name="sender"/>. Returns at once; frames to one endpoint keep their order.
    /// A message for an actor on another node than the one that proves itself at that endpoint goes through Akka.
    /// </summary>
    public void Send(string endpoint, IActorRef target, object message, IActorRef? sender = null)
    {
        // An endpoint whose connection failed is tried again only after its backoff; meanwhile (and for good once it is
        // dropped) its messages go through Akka, which has its own reconnect policy and drops them once the node is gone.
        if (_failures.TryGetValue(endpoint, out var failure) && DateTime.UtcNow < failure.RetryAt)
        {
            target.Tell(message, sender ?? ActorRefs.NoSender);
            return;
        }

        while (true)
        {
            var connection = _connections.GetOrAdd(endpoint, e => new DataPlaneConnection(this, e));
            if (connection.TryEnqueue(new Outgoing(target, message, sender)))
            {
                return;
            }

            // That connection failed and is closing; a new one will be opened.
            _connections.TryRemove(new KeyValuePair<string, DataPlaneConnection>(endpoint, connection));
        }
    }

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
    /// A connection to <paramref name="endpoint"/> failed before or while it was used: back off (1, 2, 4, 8 s) before
    /// the next attempt, and after <see cref="MaximumConnectAttempts"/> failures in a row drop the endpoint (its
    /// messages go through Akka for <see cref="DroppedFor"/>). Returns whether it was just dropped.
    /// </summary>
    internal (int Failures, bool Dropped) Failed(string endpoint)
    {
        Interlocked.Increment(ref _failedConnections);
        var now = DateTime.UtcNow;
        var failure = _failures.AddOrUpdate(
            endpoint,
            _ => new EndpointFailure(1, now + Backoff(1)),
            (_, old) => old.Count >= MaximumConnectAttempts ? old : new EndpointFailure(old.Count + 1, now + Backoff(old.Count + 1)));
        return (failure.Count, failure.Count >= MaximumConnectAttempts);
    }

    /// <summary>A connection to <paramref name="endpoint"/> was authenticated: its failures are forgotten.</summary>
    internal void Connected(string endpoint) => _failures.TryRemove(endpoint, out _);

    private static TimeSpan Backoff(int failures) =>
        failures >= MaximumConnectAttempts ? DroppedFor : TimeSpan.FromSeconds(Math.Pow(2, failures - 1));

    internal void Forget(DataPlaneConnection connection) =>
        _connections.TryRemove(new KeyValuePair<string, DataPlaneConnection>(connection.Endpoint, connection));

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
            new Thread(() => Receive(socket, stream, address, authenticated, endpoint)) { IsBackground = true, Name = $"data-plane from {address}" }.Start();
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
    // A reply address in a frame is the peer's proved endpoint (DataPlaneMessages.FromPeer), never what the frame says.
    private void Receive(Socket socket, Stream stream, string peerKey, Address peer, string peerEndpoint)
    {
        var idle = (int)Math.Min(int.MaxValue, Limits.IdleTimeout.TotalMilliseconds);
        var read = (int)Math.Min(int.MaxValue, Limits.ReadTimeout.TotalMilliseconds);
        var reader = new DataPlaneFrameReader(new BufferedStream(stream, 1 << 16), Limits.MaximumFrameSize, Limits.ReadTimeout, Limits.MinimumBytesPerSecond, inFrame => socket.ReceiveTimeout = inFrame ? read : idle);
        IActorRef? target = null;
        IActorRef? sender = null;
        void Check(string targetPath, string senderPath, string manifest)
        {
            if (!DataPlaneMessages.AllowedManifest(manifest))
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
                target!.Tell(DataPlaneMessages.FromPeer(message, peerEndpoint), sender);
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
