using System.Net.Sockets;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>
/// The connection to one peer node, chosen by its Akka address: a queue and one writer thread that finds the node's
/// data-plane endpoint (<see cref="TensorDataPlane.EndpointOfAsync"/>), connects, runs TLS (with a cluster certificate)
/// and the handshake, in which the other side proves the cluster secret and its Akka address, then writes each message
/// as one frame, in order, and releases the rows it carries (<see cref="Kernel.Rows.ICarriesRows"/>). A message for an
/// actor that is not on the node that proved itself there goes through Akka instead. On any failure the connection
/// closes and every message it still holds (and any that arrive while it closes) goes through Akka to its target
/// instead, and the data plane backs off before it connects to that node again (<see cref="TensorDataPlane.Failed"/>).
/// A connection with nothing to send for <c>idle-timeout</c> closes (a new one opens when needed), and so does one
/// whose peer left the cluster (<see cref="TensorDataPlane.PeerGone"/>): no thread waits for a peer that is gone.
/// </summary>
internal sealed class DataPlaneConnection
{
    private readonly TensorDataPlane _plane;
    private readonly Channel<Outgoing> _queue = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _closing = new();

    public DataPlaneConnection(TensorDataPlane plane, Address peer)
    {
        _plane = plane;
        Peer = peer;
        new Thread(Run) { IsBackground = true, Name = $"data-plane to {peer}" }.Start();
    }

    public Address Peer { get; }

    public bool TryEnqueue(Outgoing outgoing) => _queue.Writer.TryWrite(outgoing);

    public void Close()
    {
        _queue.Writer.TryComplete();
        _closing.Cancel();
    }

    // TLS (with a certificate), then the handshake: the node there proves the secret and is a member of this cluster.
    private async Task<(Stream Stream, Address Address)> Authenticate(TcpClient client)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token);
        deadline.CancelAfter(_plane.Limits.HandshakeTimeout);
        var stream = await _plane.SecureAsync(client.GetStream(), server: false, deadline.Token);
        var server = await DataPlaneHandshake.ConnectAsync(stream, _plane.Security.Secret, _plane.SelfAddress, _plane.Endpoint, deadline.Token);
        if (!await _plane.IsMemberAsync(server, deadline.Token))
        {
            throw new System.Security.Authentication.AuthenticationException($"{server} is not a member of this cluster");
        }

        return (stream, Address.Parse(server));
    }

    // On its own thread: blocking socket writes never hold a thread of the pool that actors and heartbeats share.
    private void Run()
    {
        _plane.ThreadStarted();
        try
        {
            var endpoint = _plane.EndpointOfAsync(Peer, _closing.Token).GetAwaiter().GetResult()
                ?? throw new IOException($"{Peer} did not say where its data plane listens within {_plane.Limits.HandshakeTimeout.TotalSeconds:0.#} s");
            var separator = endpoint.LastIndexOf(':');
            using var client = new TcpClient { NoDelay = true, SendBufferSize = 4 << 20 };
            client.ConnectAsync(endpoint[..separator], int.Parse(endpoint[(separator + 1)..], System.Globalization.CultureInfo.InvariantCulture), _closing.Token).AsTask().GetAwaiter().GetResult();
            var peer = Authenticate(client).GetAwaiter().GetResult();
            _plane.Connected(Peer);
            using var stream = new BufferedStream(peer.Stream, 1 << 16);
            while (WaitToRead())
            {
                while (_queue.Reader.TryPeek(out var outgoing))
                {
                    if (!outgoing.Target.Path.Address.Equals(peer.Address))
                    {
                        _queue.Reader.TryRead(out _);
                        Transport.SendByAkka(_plane.System, outgoing.Target, outgoing.Message, outgoing.Sender);
                        continue;
                    }

                    DataPlaneFrame.Write(stream, _plane.Serializer, outgoing);
                    _queue.Reader.TryRead(out _);
                    _plane.Sent();
                    // The receiver gets its own copy: the payload written is nobody's now (RowBatch's rule).
                    (outgoing.Message as Kernel.Rows.ICarriesRows)?.ReleaseRows();
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // One line per attempt, and attempts back off: a peer that is gone costs a handful of lines, not one a message.
            var (failures, dropped) = _plane.Failed(Peer);
            _plane.Log.Warning(
                dropped
                    ? "data plane: connection to {0} failed ({1}), {2} times in a row; its messages go through Akka from now on"
                    : "data plane: connection to {0} failed ({1}, attempt {2}); its messages go through Akka until the next attempt",
                Peer, e.Message, failures);
        }
        catch (OperationCanceledException)
        {
            // Closing.
        }
        finally
        {
            _plane.Forget(this);
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out var left))
            {
                Transport.SendByAkka(_plane.System, left.Target, left.Message, left.Sender);
            }

            _plane.ThreadEnded();
        }
    }

    // Whether there is more to write; false once the connection is closed or had nothing to send for idle-timeout.
    private bool WaitToRead()
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token);
        idle.CancelAfter(_plane.Limits.IdleTimeout);
        try
        {
            return _queue.Reader.WaitToReadAsync(idle.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (!_closing.IsCancellationRequested)
        {
            // Idle: the next message opens a new connection.
            _queue.Writer.TryComplete();
            return _queue.Reader.TryPeek(out _);
        }
    }
}
