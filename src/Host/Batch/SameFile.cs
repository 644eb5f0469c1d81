using System.Runtime.InteropServices;

namespace DistributedInference.Host.Batch;

/// <summary>
/// Whether two paths name one file, however they reach it: a symbolic link (of the file or of a folder on the way), a
/// hard link, <c>..</c>. On Linux by device and inode (<c>stat(2)</c>); elsewhere by the fully resolved path.
/// </summary>
public static class SameFile
{
    /// <summary>True when both exist and are one file; false when either does not exist.</summary>
    public static bool Check(string a, string b)
    {
        if (!File.Exists(a) || !File.Exists(b))
        {
            return false;
        }

        if (OperatingSystem.IsLinux() && Identity(a) is { } first && Identity(b) is { } second)
        {
            return first == second;
        }

        return string.Equals(Resolved(a), Resolved(b), StringComparison.Ordinal);
    }

    // (st_dev, st_ino): the first two 8-byte fields of struct stat on Linux x86-64 and arm64.
    private static (ulong Device, ulong Inode)? Identity(string path)
    {
        var buffer = new byte[256];
        if (Stat(path, buffer) != 0)
        {
            return null;
        }

        return (BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8));
    }

    private static string Resolved(string path)
    {
        var full = Path.GetFullPath(path);
        return new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true) is { } target ? Path.GetFullPath(target.FullName) : full;
    }

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
}
