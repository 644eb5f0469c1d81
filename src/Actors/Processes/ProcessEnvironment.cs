namespace DistributedInference.Actors.Processes;

/// <summary>
/// The environment <c>di launch</c> gives every process it starts, in torchrun's names where they exist; what
/// <see cref="ProcessState.FromEnvironment"/> reads.
/// </summary>
public static class ProcessEnvironment
{
    /// <summary>The process index in the whole group, 0 to WORLD_SIZE - 1.</summary>
    public const string Rank = "RANK";

    /// <summary>How many processes the group has.</summary>
    public const string WorldSize = "WORLD_SIZE";

    /// <summary>The process index on this machine.</summary>
    public const string LocalRank = "LOCAL_RANK";

    /// <summary>How many processes of the group run on this machine.</summary>
    public const string LocalWorldSize = "LOCAL_WORLD_SIZE";

    /// <summary>The address of process 0, where the group meets.</summary>
    public const string MasterAddr = "MASTER_ADDR";

    /// <summary>The port process 0 listens on for the group.</summary>
    public const string MasterPort = "MASTER_PORT";

    /// <summary>The device this process uses (<c>cpu</c>, <c>cuda:1</c>, ...).</summary>
    public const string DeviceVariable = "DI_DEVICE";

    /// <summary>The dtype the launch's config asks models to use (<c>float32</c>, <c>bfloat16</c>, <c>float16</c>), as Accelerate's mixed-precision setting.</summary>
    public const string DtypeVariable = "DI_DTYPE";

    /// <summary>
    /// Optional: the address this process listens on for the group when it is not process 0 (default: MASTER_ADDR
    /// when that is a loopback address, else this machine's address on the route to MASTER_ADDR).
    /// </summary>
    public const string HostVariable = "DI_PROCESS_HOST";
}
