using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Runtime;

public sealed class LibTorchTests
{
    [Fact]
    public void TorchSharp_initialises_and_computes_on_cpu()
    {
        LibTorch.Initialize();
        using var a = tensor(new float[] { 1, 2, 3, 4 }, [2, 2]);
        using var product = a.matmul(a);
        Assert.Equal(new float[] { 7, 10, 15, 22 }, product.data<float>().ToArray());
    }

    [Fact]
    public void Libtorch_folder_without_libtorch_is_a_clear_error()
    {
        var folder = Directory.CreateTempSubdirectory().FullName;
        try
        {
            var error = Assert.Throws<InvalidInputException>(() => LibTorch.CheckFolder(folder));
            Assert.Contains("missing libc10.so, libtorch_cpu.so, libtorch.so", error.Message, StringComparison.Ordinal);
            Assert.Throws<InvalidInputException>(() => LibTorch.CheckFolder(Path.Combine(folder, "absent")));
        }
        finally
        {
            Directory.Delete(folder);
        }
    }

    [Fact]
    public void Another_libtorch_folder_after_the_first_tensor_is_a_clear_error()
    {
        LibTorch.Initialize();
        var error = Assert.Throws<InvalidInputException>(() => LibTorch.Initialize("/opt/elsewhere/torch/lib"));
        Assert.Contains("must come before any tensor work", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cpu", "cpu")]
    [InlineData("CUDA:1", "cuda:1")]
    [InlineData("cuda", "cuda:0")]
    public void Parses_device_names(string text, string expected) =>
        Assert.Equal(expected, DeviceName.Parse(text).ToString());

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:x")]
    [InlineData("cuda:-1")]
    public void Rejects_unknown_device_names(string text) =>
        Assert.Throws<InvalidInputException>(() => DeviceName.Parse(text));

    [Fact]
    public void Asking_for_cuda_without_it_is_a_clear_error()
    {
        LibTorch.Initialize();
        if (cuda.is_available())
        {
            return;
        }

        var error = Assert.Throws<InvalidInputException>(() => DeviceName.Parse("cuda:0").ToTorch());
        Assert.Contains("CUDA is not available", error.Message, StringComparison.Ordinal);
    }
}
