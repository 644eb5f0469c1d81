using System.Text.Json;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// samples/SplitPrompts (Accelerate's distributed inference example in C#) under <c>di launch</c>: README's command as
/// written, and a launch configured by <c>di config</c>. Each prints the three completions in prompt order, the same
/// that one process generates for each prompt alone, and each process saves its share.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class SplitPromptsSampleTests : IDisposable
{
    private static readonly string[] Prompts = ["a dog", "a cat", "a chicken"];

    private readonly string _folder = Directory.CreateTempSubdirectory("di-split-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    // What the sample prints: each prompt's completion by one process alone (greedy, 8 new tokens, gpt2-tiny built-in).
    private static IReadOnlyList<string> Expected()
    {
        LibTorch.Initialize();
        using var generator = AutoModelSource.Resolve("gpt2-tiny").Replica(InferenceTask.Generate, ScalarType.Float32, new GenerationOptions(MaxNewTokens: 8))(DeviceName.Cpu);
        return Prompts.Select(p => $"[rank 0] {p} -> {JsonSerializer.Serialize(((Completion)((object[])generator.Run(new[] { p }))[0]).Text)}").ToList();
    }

    private static string RepositoryRoot()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "DistributedInference.sln")))
        {
            folder = folder.Parent;
        }

        return folder?.FullName ?? throw new InvalidOperationException("repository root not found");
    }

    // Runs di.dll in `workingDirectory` with XDG_CONFIG_HOME in the temporary folder and stdin from `input`.
    private Task<(int ExitCode, string Stdout, string Stderr)> Di(string workingDirectory, string input, IEnumerable<string> args) =>
        DiRunner.RunProcess(TimeSpan.FromMinutes(4), args, input, Path.Combine(_folder, "config"), workingDirectory);

    private void AssertEachProcessSavedItsShare(string folder, int processes)
    {
        var completions = Expected().Select(line => line[(line.IndexOf(" -> ", StringComparison.Ordinal) + 4)..]).ToList();
        var shares = DistributedInference.Actors.Kernel.Rows.SplitRules.SplitList(completions, processes, applyPadding: true);
        for (var rank = 0; rank < processes; rank++)
        {
            Assert.Equal(shares[rank], File.ReadAllLines(Path.Combine(folder, $"result_{rank}.txt")));
        }
    }

    [Fact]
    public async Task Readmes_command_runs_the_sample_in_two_processes_and_prints_the_completions_in_order()
    {
        var root = RepositoryRoot();
        var command = File.ReadAllLines(Path.Combine(root, "README.md")).Single(l => l.Contains("-- dotnet run --no-build --project samples/SplitPrompts", StringComparison.Ordinal));
        Assert.Equal("di launch --num-processes 2 -- dotnet run --no-build --project samples/SplitPrompts", command.Trim());

        // README's command, run in an empty folder (where the results go) with the project's path made absolute; the
        // project is built with the tests (README's dotnet build).
        var args = command.Trim().Split(' ').Skip(1).Select(a => a == "samples/SplitPrompts" ? Path.Combine(root, a) : a);
        var (exit, stdout, stderr) = await Di(_folder, string.Empty, args);
        Assert.True(exit == 0, stderr);
        Assert.Equal(Expected(), stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        AssertEachProcessSavedItsShare(Path.Combine(_folder, "out"), 2);
    }

    [Fact]
    public async Task A_launch_configured_by_di_config_runs_the_sample()
    {
        // di config: 3 processes, cpu, the default address, a free port.
        var (exit, stdout, stderr) = await Di(_folder, "3\ncpu\n\n0\n", ["config"]);
        Assert.True(exit == 0, stderr);
        Assert.True(File.Exists(Path.Combine(_folder, "config", "di", "launch.conf")), stdout);

        (exit, stdout, stderr) = await Di(_folder, string.Empty, ["launch", "--", "dotnet", DiRunner.ProgramDll("samples/SplitPrompts"), "gpt2-tiny", _folder]);
        Assert.True(exit == 0, stderr);
        Assert.Equal(Expected(), stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        AssertEachProcessSavedItsShare(_folder, 3);
    }
}
