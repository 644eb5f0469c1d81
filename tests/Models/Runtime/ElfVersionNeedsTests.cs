namespace DistributedInference.Models.Tests.Runtime;

public sealed class ElfVersionNeedsTests
{
    private const string Version = "GLIBCXX_3.4.32";

    private static string PackageCopy =>
        Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") ??
                     Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
            "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    [Fact]
    public void Build_output_copy_requires_the_version_weakly()
    {
        var output = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"));
        Assert.True(ElfVersionNeeds.IsWeak(output, Version) != false, $"{Version} is still a hard requirement of the output copy");
    }

    [Fact]
    public void Marking_is_idempotent_and_changes_only_the_flag()
    {
        Assert.True(File.Exists(PackageCopy), $"{PackageCopy} not restored");
        var original = File.ReadAllBytes(PackageCopy);
        Assert.False(ElfVersionNeeds.IsWeak(original, Version));
        var copy = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(copy, original);
            Assert.Equal($"marked {Version} weak", ElfVersionNeeds.MarkWeak(copy, Version));
            Assert.Equal($"{Version} already weak", ElfVersionNeeds.MarkWeak(copy, Version));
            var marked = File.ReadAllBytes(copy);
            Assert.True(ElfVersionNeeds.IsWeak(marked, Version));
            Assert.Equal(original.Length, marked.Length);
            Assert.Single(Enumerable.Range(0, original.Length), i => original[i] != marked[i]);
        }
        finally
        {
            File.Delete(copy);
        }
    }

    [Fact]
    public void Leaves_files_alone_that_are_not_elf_or_do_not_need_the_version()
    {
        var text = Path.GetTempFileName();
        try
        {
            File.WriteAllText(text, "not a shared library");
            Assert.StartsWith("not an ELF64", ElfVersionNeeds.MarkWeak(text, Version), StringComparison.Ordinal);
            Assert.Null(ElfVersionNeeds.IsWeak(File.ReadAllBytes(PackageCopy), "GLIBCXX_9.9.9"));
        }
        finally
        {
            File.Delete(text);
        }
    }
}
