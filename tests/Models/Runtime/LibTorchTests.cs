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

    // A folder laid out as a PyTorch install (torch/lib beside torch/version.py) or a libtorch archive (lib beside build-version).
    private static string FakeLibTorch(string root, string versionFile, string content)
    {
        var lib = Path.Combine(root, "lib");
        Directory.CreateDirectory(lib);
        foreach (var name in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
        {
            File.WriteAllText(Path.Combine(lib, name), string.Empty);
        }

        File.WriteAllText(Path.Combine(root, versionFile), content);
        return lib;
    }

    [Fact]
    public void A_libtorch_folder_of_another_version_is_one_line_before_anything_loads()
    {
        var root = Directory.CreateTempSubdirectory("di-libtorch-").FullName;
        try
        {
            var lib = FakeLibTorch(root, "version.py", "from typing import Optional\n__version__ = '2.11.0+cu130'\ndebug = False\n");
            Assert.Equal("2.11.0+cu130", LibTorch.FolderVersion(lib));
            var error = Assert.Throws<InvalidInputException>(() => LibTorch.CheckFolder(lib));
            Assert.Contains("libtorch 2.11.0+cu130, but this di runs on TorchSharp 0.107, which needs libtorch 2.10 (the torch/lib of a PyTorch 2.10.x install)", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', error.Message);

            File.WriteAllText(Path.Combine(root, "version.py"), "__version__ = '2.10.1+cu128'\n");
            LibTorch.CheckFolder(lib);
            File.Delete(Path.Combine(root, "version.py"));
            File.WriteAllText(Path.Combine(root, "build-version"), "2.10.0+cpu\n");
            Assert.Equal("2.10.0+cpu", LibTorch.FolderVersion(lib));
            LibTorch.CheckFolder(lib);
            File.Delete(Path.Combine(root, "build-version"));
            Assert.Null(LibTorch.FolderVersion(lib));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void The_required_version_is_the_shipped_cpu_libtorchs()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(folder!.FullName, "Directory.Packages.props")))
        {
            folder = folder.Parent;
        }

        var props = File.ReadAllText(Path.Combine(folder.FullName, "Directory.Packages.props"));
        Assert.Contains($"<PackageVersion Include=\"libtorch-cpu-linux-x64\" Version=\"{LibTorch.RequiredVersion}.", props, StringComparison.Ordinal);
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
