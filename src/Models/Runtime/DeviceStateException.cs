namespace DistributedInference.Models.Runtime;

/// <summary>
/// A forward pass failed in a way that leaves the device's state unusable (a CUDA error, a device-side assert, weights
/// that are no longer trusted): the model on that device must be built again before it runs another batch. A replica
/// model may throw it itself; <see cref="IsDeviceStateBad"/> also recognises libtorch's own device errors.
/// </summary>
public sealed class DeviceStateException : Exception
{
    private static readonly string[] DeviceErrors =
    [
        "CUDA error",
        "device-side assert",
        "CUBLAS_STATUS_",
        "CUDNN_STATUS_",
        "cuDNN error",
        "HIP error",
        "NCCL error",
        "illegal memory access",
    ];

    public DeviceStateException(string message)
        : base(message)
    {
    }

    public DeviceStateException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>
    /// True when <paramref name="error"/> (or an exception inside it) says the device state is bad: a
    /// <see cref="DeviceStateException"/>, or a libtorch error naming a CUDA/HIP/cuBLAS/cuDNN/NCCL failure or a
    /// device-side assert. Any other error (a bad row, a shape mismatch, out of memory) leaves the model usable.
    /// </summary>
    public static bool IsDeviceStateBad(Exception error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is DeviceStateException || DeviceErrors.Any(marker => e.Message.Contains(marker, StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }
}
