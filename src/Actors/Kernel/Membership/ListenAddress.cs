using System.Net;
using System.Net.Sockets;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>
/// Where a node's listeners bind: exactly the address its host stands for (a name resolves to its address, an IPv4
/// one first), never all interfaces unless the host is <c>0.0.0.0</c> itself; and whether that port is already taken.
/// </summary>
public static class ListenAddress
{
    /// <summary>The address to bind for <paramref name="host"/>.</summary>
    /// <exception cref="InvalidInputException">The name does not resolve.</exception>
    public static IPAddress Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var address))
        {
            return address;
        }

        try
        {
            var addresses = Dns.GetHostAddresses(host);
            return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.First();
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException or ArgumentException)
        {
            throw new InvalidInputException($"--host {host}: cannot resolve it to an address ({e.Message})", e);
        }
    }

    /// <summary>
    /// Fails when something already listens on <paramref name="host"/>:<paramref name="port"/> (port 0: nothing to
    /// check). Akka's transport binds with SO_REUSEADDR, which on Linux .NET also sets SO_REUSEPORT, so a second node on
    /// a taken port would otherwise listen beside the first: this probe binds with SO_REUSEADDR alone, which the kernel
    /// refuses while another socket listens there (and allows over connections left in TIME_WAIT).
    /// </summary>
    /// <exception cref="InvalidInputException">The port is taken.</exception>
    public static void RequireFree(string host, int port, string what)
    {
        if (port == 0)
        {
            return;
        }

        var address = Resolve(host);
        using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (OperatingSystem.IsLinux())
        {
            const int SolSocket = 1;
            const int SoReuseAddr = 2;
            probe.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
        }
        else if (OperatingSystem.IsWindows())
        {
            probe.ExclusiveAddressUse = true;
        }

        try
        {
            probe.Bind(new IPEndPoint(address, port));
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
        {
            throw new InvalidInputException($"{what} {host}:{port} is already in use (another di node there?): choose another port");
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressNotAvailable)
        {
            throw new InvalidInputException($"{what} {host}:{port}: {address} is not an address of this machine");
        }
    }
}
