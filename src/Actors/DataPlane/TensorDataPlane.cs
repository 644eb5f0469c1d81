using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Serialization;

namespace DistributedInference.Actors.DataPlane;

/// <summary>
/// Bulk messages (micro-batches and outputs full of tensors) between nodes on TCP connections of their own, beside
/// Akka.Remote's: Akka's single connection per node pair then carries only control messages and heartbeats, which bulk
/// traffic can no longer delay, and tensors skip Akka's extra copies. One listener per actor system (cluster nodes with
/// <c>distributed-inference.data-plane.enabled</c>); <see cref="Send"/> opens one connection per remote endpoint and
/// writes frames in order. A message sent here is owned by the data plane: the tensor a stage or device made (its rows,
/// activation or batch results) is disposed once written.
/// If a connection fails, its messages go through Akka instead (nothing is lost to the data plane).
/// </summary>
public sealed class TensorDataPlane : IExtension, IDisposable
{
    private static readonly ConditionalWeakTable<ActorSystem, StrongBox<bool>> Enabled = new();

    private readonly ExtendedActorSystem _system;
    private readonly DistributedInferenceSerializer _serializer;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, DataPlaneConnection> _connections = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IActorRef> _targets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<TcpClient, bool> _incoming = new();
    private long _framesSent;
    private long _framesReceived;

    public TensorDataPlane(ExtendedActorSystem system)
    {
        _system = system;
        Log = Logging.GetLogger(system, "data-plane");
        _serializer = (DistributedInferenceSerializer)system.Serialization.FindSerializerForType(typeof(Pipeline.MicroBatch));
        var config = system.Settings.Config;
        MaximumFrameSize = config.GetByteSize("distributed-inference.data-plane.maximum-frame-size") ?? (1L << 30);
        var publicHost = config.GetString("akka.remote.dot-netty.tcp.public-hostname", string.Empty);
        var host = config.GetString("akka.remote.dot-netty.tcp.hostname", "127.0.0.1");
        _listener = new TcpListener(IPAddress.TryParse(host, out var address) ? address : IPAddress.Any, config.GetInt("distributed-inference.data-plane.port", 0));
        _listener.Start();
        Endpoint = $"{(string.IsNullOrEmpty(publicHost) ? host : publicHost)}:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _ = AcceptAsync();
        system.RegisterOnTermination(Dispose);
    }

    /// <summary>host:port where this node receives bulk messages.</summary>
    public string Endpoint { get; }

    /// <summary>Frames written to other nodes so far.</summary>
    public long FramesSent => Interlocked.Read(ref _framesSent);

    /// <summary>Frames received from other nodes and delivered so far.</summary>
    public long FramesReceived => Interlocked.Read(ref _framesReceived);

    internal long MaximumFrameSize { get; }

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
    /// has one and the endpoint is another node's; otherwise through Akka. All messages from one sender to one target
    /// should take the same way, so they keep their order.
    /// </summary>
    public static void Tell(ActorSystem system, string? endpoint, IActorRef target, object message, IActorRef? sender = null)
    {
        var plane = endpoint is null ? null : For(system);
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
    /// </summary>
    public void Send(string endpoint, IActorRef target, object message, IActorRef? sender = null)
    {
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
        foreach (var client in _incoming.Keys)
        {
            client.Dispose();
        }

        foreach (var connection in _connections.Values)
        {
            connection.Close();
        }
    }

    internal void Sent() => Interlocked.Increment(ref _framesSent);

    internal void Forget(DataPlaneConnection connection) =>
        _connections.TryRemove(new KeyValuePair<string, DataPlaneConnection>(connection.Endpoint, connection));

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stopping.Token);
                _incoming[client] = true;
                new Thread(() => Receive(client)) { IsBackground = true, Name = $"data-plane from {client.Client.RemoteEndPoint}" }.Start();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopping.
        }
    }

    // On its own thread: frames are read with blocking calls straight into the tensors they carry.
    private void Receive(TcpClient client)
    {
        using (client)
        {
            var reader = new DataPlaneFrameReader(new BufferedStream(client.GetStream(), 1 << 16), MaximumFrameSize);
            try
            {
                while (reader.Next(_serializer) is var (target, sender, message))
                {
                    Interlocked.Increment(ref _framesReceived);
                    Resolve(target).Tell(message, sender.Length == 0 ? ActorRefs.NoSender : Resolve(sender));
                }
            }
            catch (Exception e) when (!_stopping.IsCancellationRequested)
            {
                // A malformed frame or a broken connection: drop the connection (the sender falls back to Akka), keep the node.
                Log.Warning("data plane: connection from {0} dropped: {1}", client.Client.RemoteEndPoint, e.Message);
            }
            catch (Exception)
            {
                // Stopping.
            }
            finally
            {
                _incoming.TryRemove(client, out _);
            }
        }
    }

    private IActorRef Resolve(string path) => _targets.GetOrAdd(path, p => _system.Provider.ResolveActorRef(p));
}

/// <summary>One message on its way out: to whom, what, and from whom.</summary>
internal readonly record struct Outgoing(IActorRef Target, object Message, IActorRef? Sender);

public sealed class TensorDataPlaneProvider : ExtensionIdProvider<TensorDataPlane>
{
    public override TensorDataPlane CreateExtension(ExtendedActorSystem system) => new(system);
}
