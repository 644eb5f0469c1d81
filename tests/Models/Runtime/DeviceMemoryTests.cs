using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Tests.Runtime;

/// <summary>Free CPU memory under a memory cgroup: the least headroom of the cgroup and those above it, inactive file cache counted as free.</summary>
public sealed class DeviceMemoryTests : IDisposable
{
    private const long MiB = 1L << 20;
    private readonly string _mount = Directory.CreateTempSubdirectory("cgroup-").FullName;

    public void Dispose() => Directory.Delete(_mount, recursive: true);

    private void Write(string folder, params (string File, string Text)[] files)
    {
        var path = Path.Combine(_mount, folder);
        Directory.CreateDirectory(path);
        foreach (var (file, text) in files)
        {
            File.WriteAllText(Path.Combine(path, file), text + "\n");
        }
    }

    [Fact]
    public void V2_takes_the_least_headroom_up_the_tree_with_inactive_file_cache_as_free()
    {
        Write(string.Empty, ("memory.current", $"{900 * MiB}"));
        Write("pod", ("memory.max", $"{1000 * MiB}"), ("memory.current", $"{700 * MiB}"), ("memory.stat", $"anon 1\ninactive_file {100 * MiB}"));
        Write("pod/app", ("memory.max", "max"), ("memory.high", "max"), ("memory.current", $"{600 * MiB}"));

        // The pod's limit: 1000 - (700 - 100) MiB; the app's own cgroup sets none.
        Assert.Equal(400 * MiB, DeviceMemory.CgroupHeadroom(["0::/pod/app"], _mount));

        Write("pod/app", ("memory.high", $"{650 * MiB}"));
        Assert.Equal(50 * MiB, DeviceMemory.CgroupHeadroom(["0::/pod/app"], _mount));
    }

    [Fact]
    public void V1_reads_the_memory_controller_and_no_limit_is_none()
    {
        Write("memory/job", ("memory.limit_in_bytes", $"{2048 * MiB}"), ("memory.usage_in_bytes", $"{1024 * MiB}"), ("memory.stat", $"cache 5\ntotal_inactive_file {24 * MiB}"));
        Assert.Equal(1048 * MiB, DeviceMemory.CgroupHeadroom(["5:cpu,cpuacct:/job", "4:memory:/job", "0::/"], _mount));

        Write("memory/free", ("memory.limit_in_bytes", "9223372036854771712"), ("memory.usage_in_bytes", $"{1024 * MiB}"));
        Assert.Null(DeviceMemory.CgroupHeadroom(["4:memory:/free"], _mount));
        Assert.Null(DeviceMemory.CgroupHeadroom(["0::/nowhere", "garbage"], _mount));
    }
}
