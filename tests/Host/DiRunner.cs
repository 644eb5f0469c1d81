using System.CommandLine;
using DistributedInference.Host.CommandLine;

namespace DistributedInference.Host.Tests;

/// <summary>Runs the <c>di</c> command line in this process and captures what it prints.</summary>
public static class DiRunner
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");

    public static string TinyLanguageModel => Path.Combine(Fixtures, "gpt2-tiny", "lm");

    public static string TinyClassifier => Path.Combine(Fixtures, "gpt2-tiny", "cls");

    public static string Expected => Path.Combine(Fixtures, "gpt2-tiny", "expected.safetensors");

    public static async Task<(int ExitCode, string Stdout, string Stderr)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var exit = await DiCommandLine.Create().Parse(args).InvokeAsync(
            new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = stdout, Error = stderr });
        return (exit, stdout.ToString(), stderr.ToString());
    }
}
