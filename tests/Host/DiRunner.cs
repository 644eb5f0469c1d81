using System.CommandLine;
using System.Diagnostics;
using DistributedInference.Host.CommandLine;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests;

/// <summary>Runs the <c>di</c> command line in this process and captures what it prints.</summary>
public static class DiRunner
{
    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The clone the tests were built in: the folder above the test binaries that holds DistributedInference.sln.</summary>
    public static string RepositoryRoot()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "DistributedInference.sln")))
        {
            folder = folder.Parent;
        }

        return folder?.FullName ?? throw new InvalidOperationException("repository root not found");
    }

    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");

    /// <summary>
    /// The dll of a program this repository builds (<paramref name="project"/> is its folder from the repository root, such as
    /// <c>samples/SplitPrompts</c>), in that program's own build output: run from there it finds the packages its
    /// deps.json names, which this test project's output (an ASP.NET Core app) does not copy.
    /// </summary>
    public static string ProgramDll(string project)
    {
        // This output is <repo>/tests/Host/bin/<configuration>/<framework>/<runtime>/.
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = output.Parent!;
        var configuration = framework.Parent!;
        var repository = configuration.Parent!.Parent!.Parent!.Parent!;
        var dll = Path.Combine(repository.FullName, project, "bin", configuration.Name, framework.Name, output.Name, Path.GetFileName(project) + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is not built");
        return dll;
    }


    public static string TinyLanguageModel => Path.Combine(Fixtures, "gpt2-tiny", "lm");

    public static string TinyClassifier => Path.Combine(Fixtures, "gpt2-tiny", "cls");

    public static string Expected => Path.Combine(Fixtures, "gpt2-tiny", "expected.safetensors");

    /// <summary>A tensor of the fixture's expected.safetensors.</summary>
    public static Tensor ExpectedTensor(string name) => SafeTensorsFile.Open(Expected).Read(name);

    /// <summary>
    /// A copy of the model folder <paramref name="source"/> at <paramref name="destination"/> (its name is the copy's
    /// name); with <paramref name="changeOneWeight"/>, the last float32 of its weights is changed and nothing else: the
    /// same config, header and tensor layout, other weights.
    /// </summary>
    public static string CopyModel(string source, string destination, bool changeOneWeight)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(destination, Path.GetFileName(file)));
        }

        if (changeOneWeight)
        {
            using var weights = File.Open(Path.Combine(destination, "model.safetensors"), FileMode.Open, FileAccess.ReadWrite);
            var last = new byte[4];
            weights.Seek(-4, SeekOrigin.End);
            weights.ReadExactly(last);
            weights.Seek(-4, SeekOrigin.End);
            weights.Write(BitConverter.GetBytes(BitConverter.ToSingle(last) + 0.5f));
        }

        return destination;
    }

    public static double MaxAbsDiff(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        return (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().ToDouble();
    }

    /// <summary>Runs the real <c>di</c> program (dotnet di.dll) as a user starts it.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> RunProcess(TimeSpan timeout, params string[] args) =>
        RunProcess(timeout, args, input: null);

    /// <summary>
    /// As <see cref="RunProcess(TimeSpan, string[])"/>, with <paramref name="input"/> on its standard input (closed after
    /// it), XDG_CONFIG_HOME at <paramref name="configHome"/> (the user's config folder) and <paramref name="workingDirectory"/>.
    /// </summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunProcess(TimeSpan timeout, IEnumerable<string> args, string? input, string? configHome = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = input is not null, RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }

        if (configHome is not null)
        {
            start.Environment["XDG_CONFIG_HOME"] = configHome;
        }

        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "di.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        using var reaper = KillOnDispose(process);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
            process.StandardInput.Close();
        }

        await process.WaitForExitAsync().WaitAsync(timeout);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts the real <c>di</c> program (dotnet di.dll) with stdout and stderr redirected, and returns at once.</summary>
    /// <param name="args">di's arguments.</param>
    /// <param name="environment">Variables set for it, beside this process's.</param>
    public static Process StartProcess(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "di.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return Process.Start(start)!;
    }

    /// <summary>Kills <paramref name="process"/> (and its children) when disposed, so a failed test leaves no process behind.</summary>
    public static IDisposable KillOnDispose(Process process) => new Reaper(process);

    public static async Task<(int ExitCode, string Stdout, string Stderr)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var exit = await DiCommandLine.InvokeAsync(args, new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = stdout, Error = stderr });
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private sealed class Reaper(Process process) : IDisposable
    {
        public void Dispose()
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
                // Exited in the meantime.
            }
        }
    }
}
