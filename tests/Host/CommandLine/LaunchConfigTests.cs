using System.Diagnostics;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di config</c>'s questions answered on stdin, and <c>di launch</c> reading the file it writes.</summary>
public sealed class LaunchConfigTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-config-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    // Runs di.dll with XDG_CONFIG_HOME in the temporary folder (the user's config folder) and stdin from `input`.
    private async Task<(int ExitCode, string Stdout, string Stderr)> Di(string input, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "di.dll"));
        args.ToList().ForEach(start.ArgumentList.Add);
        start.Environment["XDG_CONFIG_HOME"] = Path.Combine(_folder, "config");
        using var process = Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(process);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (process.ExitCode, await stdout, await stderr);
    }

    private string Script()
    {
        var path = Path.Combine(_folder, "program.sh");
        File.WriteAllText(path, "#!/bin/sh\necho \"$RANK/$WORLD_SIZE $DI_DEVICE $MASTER_ADDR:$MASTER_PORT\"\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return path;
    }

    [Fact]
    public async Task Di_config_answers_become_the_launch_defaults_and_flags_override_them()
    {
        var (exit, stdout, stderr) = await Di("3\ncuda:0,cuda:1\n\n29611\n", "config");
        Assert.True(exit == 0, stderr);
        Assert.Contains("How many processes? [2]: ", stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_folder, "config", "di", "launch.conf")), stdout);

        (exit, stdout, stderr) = await Di("", "launch", "--", Script());
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["[rank 0] 0/3 cuda:0 127.0.0.1:29611", "[rank 1] 1/3 cuda:1 127.0.0.1:29611", "[rank 2] 2/3 cuda:0 127.0.0.1:29611"], lines);

        // Flags override the file.
        (exit, stdout, stderr) = await Di("", "launch", "--num-processes", "1", "--devices", "cpu", "--", Script());
        Assert.True(exit == 0, stderr);
        Assert.Equal("[rank 0] 0/1 cpu 127.0.0.1:29611", stdout.Trim());
    }

    [Fact]
    public async Task Config_file_overrides_the_default_file()
    {
        var file = Path.Combine(_folder, "other.conf");
        var (exit, _, stderr) = await Di("1\ncpu:0\n127.0.0.1\n0\n", "config", "--config-file", file);
        Assert.True(exit == 0, stderr);
        Assert.False(File.Exists(Path.Combine(_folder, "config", "di", "launch.conf")));

        (exit, var stdout, stderr) = await Di("", "launch", "--config-file", file, "--", Script());
        Assert.True(exit == 0, stderr);
        Assert.StartsWith("[rank 0] 0/1 cpu:0 127.0.0.1:", stdout.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_answer_is_a_one_line_error()
    {
        var (exit, _, stderr) = await Di("many\n", "config");
        Assert.Equal(2, exit);
        Assert.Contains("processes: give a whole number from 1 to 1024, got 'many'", stderr, StringComparison.Ordinal);
    }
}
