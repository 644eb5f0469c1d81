using Akka.Configuration;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>
/// The data plane's bounds (<c>distributed-inference.data-plane</c>): the largest frame; how long a handshake, a read
/// inside a frame, and an idle authenticated connection may take; the slowest rate a frame may arrive at; how many
/// connections may wait in a handshake (the oldest is dropped for a newer one), and how many authenticated ones are
/// kept per peer node and in all (more are refused).
/// </summary>
public sealed record DataPlaneLimits(
    long MaximumFrameSize,
    TimeSpan HandshakeTimeout,
    TimeSpan ReadTimeout,
    TimeSpan IdleTimeout,
    long MinimumBytesPerSecond,
    int MaximumPendingHandshakes,
    int MaximumConnections,
    int MaximumConnectionsPerPeer)
{
    /// <summary>Reads the limits, with the defaults of hocon/cluster.conf for keys left out.</summary>
    /// <exception cref="InvalidInputException">A limit that is not positive.</exception>
    public static DataPlaneLimits From(Config config)
    {
        const string Section = "distributed-inference.data-plane.";
        var limits = new DataPlaneLimits(
            config.GetByteSize(Section + "maximum-frame-size") ?? (1L << 30),
            config.GetTimeSpan(Section + "handshake-timeout", TimeSpan.FromSeconds(5)),
            config.GetTimeSpan(Section + "read-timeout", TimeSpan.FromSeconds(30)),
            config.GetTimeSpan(Section + "idle-timeout", TimeSpan.FromMinutes(30)),
            config.GetByteSize(Section + "minimum-rate") ?? (1L << 20),
            config.GetInt(Section + "max-pending-handshakes", 16),
            config.GetInt(Section + "max-connections", 64),
            config.GetInt(Section + "max-connections-per-peer", 4));
        if (limits.MaximumFrameSize <= 0 || limits.HandshakeTimeout <= TimeSpan.Zero || limits.ReadTimeout <= TimeSpan.Zero || limits.IdleTimeout <= TimeSpan.Zero
            || limits.MinimumBytesPerSecond <= 0 || limits.MaximumPendingHandshakes <= 0 || limits.MaximumConnections <= 0 || limits.MaximumConnectionsPerPeer <= 0)
        {
            throw new InvalidInputException("distributed-inference.data-plane: every size, timeout and connection limit must be positive");
        }

        return limits;
    }
}
