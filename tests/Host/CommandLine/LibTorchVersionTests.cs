namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// <c>--libtorch</c> with a PyTorch install of another version is one line naming both versions, exit 2, and nothing
/// on stdout (TorchSharp's loader printed a 35-44 line trace there and failed without the cause).
/// </summary>
public sealed class LibTorchVersionTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-libtorch-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("env")]
    [InlineData("infer")]
    public async Task A_pytorch_install_of_another_version_is_one_line_and_nothing_on_stdout(string command)
    {
        // A PyTorch 2.11 install's layout: torch/lib beside torch/version.py.
        var lib = Path.Combine(_folder, "torch", "lib");
        Directory.CreateDirectory(lib);
        foreach (var name in new[] { "libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so" })
        {
            File.WriteAllText(Path.Combine(lib, name), string.Empty);
        }

        File.WriteAllText(Path.Combine(_folder, "torch", "version.py"), "__version__ = '2.11.0+cu130'\ngit_version = 'abc'\n");
        var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), command, "--libtorch", lib);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal([$"di: error: --libtorch {lib}: libtorch 2.11.0+cu130, but this di runs on TorchSharp 0.107, which needs libtorch 2.10 (the torch/lib of a PyTorch 2.10.x install)"],
            stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
