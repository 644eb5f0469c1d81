using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

// Marks one version requirement (for example GLIBCXX_3.4.32) of an ELF64 shared library as weak
// (VER_FLG_WEAK in its Vernaux entry), so the dynamic loader accepts a system library that lacks that
// version. Only safe for versions whose symbols are never called: see docs/design.md, "TorchSharp on Debian 12".
// Idempotent; does nothing when the file is absent, is not ELF64 little-endian, lacks the requirement, or when
// the system library named by SystemLibrary already defines the version.
public sealed class MarkVersionNeedWeak : Microsoft.Build.Utilities.Task
{
    [Required]
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    [Required]
    public string Version { get; set; } = "";

    public string SystemLibrary { get; set; } = "";

    public override bool Execute()
    {
        if (SystemLibraryDefinesVersion())
        {
            Log.LogMessage(MessageImportance.Low, $"{SystemLibrary} defines {Version}: nothing to mark weak.");
            return true;
        }

        foreach (var item in Files)
        {
            var path = item.ItemSpec;
            if (!File.Exists(path))
            {
                continue;
            }

            try
            {
                var result = ElfVersionNeeds.MarkWeak(path, Version);
                Log.LogMessage(MessageImportance.Normal, $"{path}: {result}");
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                Log.LogError($"Could not mark {Version} weak in {path}: {e.Message}");
            }
        }

        return !Log.HasLoggedErrors;
    }

    private bool SystemLibraryDefinesVersion()
    {
        var candidates = SystemLibrary.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries);
        var needle = Encoding.ASCII.GetBytes(Version + "\0");
        return candidates.Where(File.Exists).Any(c => Contains(File.ReadAllBytes(c), needle));
    }

    private static bool Contains(byte[] haystack, byte[] needle)
    {
        for (var i = Array.IndexOf(haystack, needle[0]); i >= 0 && i <= haystack.Length - needle.Length; i = Array.IndexOf(haystack, needle[0], i + 1))
        {
            var j = 1;
            while (j < needle.Length && haystack[i + j] == needle[j])
            {
                j++;
            }

            if (j == needle.Length)
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Reads and edits the version requirements (<c>.gnu.version_r</c>) of an ELF64 little-endian file.</summary>
public static class ElfVersionNeeds
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlagWeak = 0x2;

    /// <summary>True if the file requires <paramref name="version"/> weakly, false if strictly, null if not at all.</summary>
    public static bool? IsWeak(byte[] bytes, string version)
    {
        var at = FindFlags(bytes, version);
        return at < 0 ? null : (ReadUInt16(bytes, at) & VerFlagWeak) != 0;
    }

    /// <summary>Marks the requirement weak in place; says what it did.</summary>
    public static string MarkWeak(string path, string version)
    {
        var bytes = File.ReadAllBytes(path);
        var at = FindFlags(bytes, version);
        if (at == -2)
        {
            return "not an ELF64 little-endian file, left alone";
        }

        if (at < 0)
        {
            return $"does not require {version}, left alone";
        }

        var flags = ReadUInt16(bytes, at);
        if ((flags & VerFlagWeak) != 0)
        {
            return $"{version} already weak";
        }

        WriteUInt16(bytes, at, (ushort)(flags | VerFlagWeak));
        var temporary = path + ".weak-tmp";
        File.WriteAllBytes(temporary, bytes);
        File.Copy(temporary, path, overwrite: true);
        File.Delete(temporary);
        return $"marked {version} weak";
    }

    // Offset of vna_flags of the Vernaux entry naming the version; -1 when absent, -2 when not ELF64 LE.
    private static int FindFlags(byte[] bytes, string version)
    {
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F' ||
            bytes[4] != 2 || bytes[5] != 1)
        {
            return -2;
        }

        var sectionHeaders = checked((int)ReadUInt64(bytes, 0x28));
        var sectionHeaderSize = ReadUInt16(bytes, 0x3a);
        var sectionCount = ReadUInt16(bytes, 0x3c);
        for (var i = 0; i < sectionCount; i++)
        {
            var header = sectionHeaders + (i * sectionHeaderSize);
            if (ReadUInt32(bytes, header + 4) != ShtGnuVerneed)
            {
                continue;
            }

            var need = checked((int)ReadUInt64(bytes, header + 0x18));
            var stringTableHeader = sectionHeaders + checked((int)ReadUInt32(bytes, header + 0x28) * sectionHeaderSize);
            var strings = checked((int)ReadUInt64(bytes, stringTableHeader + 0x18));
            var needCount = ReadUInt32(bytes, header + 0x2c);
            for (var n = 0; n < needCount; n++)
            {
                var aux = need + checked((int)ReadUInt32(bytes, need + 8));
                for (var a = 0; a < ReadUInt16(bytes, need + 2); a++)
                {
                    if (ReadString(bytes, strings + checked((int)ReadUInt32(bytes, aux + 8))) == version)
                    {
                        return aux + 4;
                    }

                    aux += checked((int)ReadUInt32(bytes, aux + 12));
                }

                need += checked((int)ReadUInt32(bytes, need + 12));
            }
        }

        return -1;
    }

    private static ushort ReadUInt16(byte[] b, int at) => BitConverter.ToUInt16(b, at);

    private static uint ReadUInt32(byte[] b, int at) => BitConverter.ToUInt32(b, at);

    private static ulong ReadUInt64(byte[] b, int at) => BitConverter.ToUInt64(b, at);

    private static void WriteUInt16(byte[] b, int at, ushort value) => BitConverter.GetBytes(value).CopyTo(b, at);

    private static string ReadString(byte[] b, int at)
    {
        var end = Array.IndexOf(b, (byte)0, at);
        return Encoding.ASCII.GetString(b, at, end - at);
    }
}
