using DistributedInference.Models.Runtime;
using TorchSharp;

namespace DistributedInference.Models.Tests.Runtime;

public sealed class CpuThreadsTests
{
    [Fact]
    public void Processes_started_together_on_one_machine_divide_its_cores_among_all_their_cpu_devices()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS")))
        {
            // The user chose: nothing is divided.
            Assert.Null(CpuThreads.PerProcess(2, [DeviceName.Cpu]));
            return;
        }

        var cores = Environment.ProcessorCount;
        Assert.Equal(Math.Max(1, cores / 2), CpuThreads.PerProcess(2, [DeviceName.Cpu]));
        Assert.Equal(Math.Max(1, cores / 6), CpuThreads.PerProcess(3, [DeviceName.Cpu, DeviceName.Cpu]));
        Assert.Equal(1, CpuThreads.PerProcess(cores * 4, [DeviceName.Cpu]));
        Assert.Equal(Math.Max(1, cores / 2), CpuThreads.PerProcess(2, [DeviceName.Cpu, new DeviceName(DeviceType.CUDA, 0)]));
        Assert.Null(CpuThreads.PerProcess(2, [new DeviceName(DeviceType.CUDA, 0)]));
    }
}
