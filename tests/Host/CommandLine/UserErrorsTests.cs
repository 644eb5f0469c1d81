using DistributedInference.Host.CommandLine;
using DistributedInference.Models;

namespace DistributedInference.Host.Tests.CommandLine;

public sealed class UserErrorsTests
{
    private static async Task<(int Exit, string Stderr)> Run(Exception thrown)
    {
        var stderr = new StringWriter();
        var exit = await UserErrors.Run(() => throw thrown, stderr);
        return (exit, stderr.ToString().TrimEnd());
    }

    [Fact]
    public async Task A_full_disk_is_said_as_it_is_not_as_an_internal_error()
    {
        var (exit, stderr) = await Run(new IOException("No space left on device : '/tmp/out/.r.safetensors.1.tmp'"));
        Assert.Equal(UserErrors.Failure, exit);
        Assert.Equal("di: error: No space left on device : '/tmp/out/.r.safetensors.1.tmp'", stderr);
    }

    [Fact]
    public async Task Bad_input_is_exit_2_and_a_bug_is_an_internal_error()
    {
        Assert.Equal((UserErrors.BadInput, "di: error: --x: no"), await Run(new InvalidInputException("--x: no")));
        Assert.Equal((UserErrors.Failure, "di: internal error: NullReferenceException: boom"), await Run(new NullReferenceException("boom")));
    }
}
