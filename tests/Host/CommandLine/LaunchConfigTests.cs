namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di config</c>'s questions answered on stdin, and <c>di launch</c> reading the file it writes.</summary>
[Collection(ProcessTests.Collection)]
public sealed class LaunchConfigTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-config-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    // Runs di.dll with XDG_CONFIG_HOME in the temporary folder (the user's config folder) and stdin from `input`.
    private Task<(int ExitCode, string Stdout, string Stderr)> Di(string input, params string[] args) =>
        DiRunner.RunProcess(TimeSpan.FromMinutes(2), args, input, Path.Combine(_folder, "config"));

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
        var (exit, _, stderr) = await Di("1\ncuda:1\n127.0.0.1\n0\n", "config", "--config-file", file);
        Assert.True(exit == 0, stderr);
        Assert.False(File.Exists(Path.Combine(_folder, "config", "di", "launch.conf")));

        (exit, var stdout, stderr) = await Di("", "launch", "--config-file", file, "--", Script());
        Assert.True(exit == 0, stderr);
        Assert.StartsWith("[rank 0] 0/1 cuda:1 127.0.0.1:", stdout.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Di_config_asks_for_machines_and_the_dtype()
    {
        var file = Path.Combine(_folder, "machines.conf");
        var (exit, stdout, stderr) = await Di("4\ncpu\n\n29612\n2\n1\nbfloat16\n", "config", "--config-file", file);
        Assert.True(exit == 0, stderr);
        Assert.Contains("This machine's rank (0 to 1; machine 0 hosts process 0)? [0]: ", stdout, StringComparison.Ordinal);
        var saved = DistributedInference.Host.Cluster.LaunchConfig.Read(file);
        Assert.Equal((2, 1, "bf16"), (saved.NumMachines, saved.MachineRank, saved.Dtype));

        // Machine 1 of 2 starts processes 2 and 3, and hands them the dtype.
        (exit, stdout, stderr) = await Di("", "launch", "--config-file", file, "--", "sh", "-c", "echo \"$RANK/$WORLD_SIZE $LOCAL_RANK $DI_DTYPE\"");
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["[rank 2] 2/4 0 bf16", "[rank 3] 3/4 1 bf16"], lines);
    }

    [Fact]
    public async Task A_wrong_answer_is_asked_again_and_dtypes_are_spelled_as_dtype()
    {
        var file = Path.Combine(_folder, "retry.conf");
        var (exit, stdout, stderr) = await Di("many\n3\ncpu\n\n0\n1\nfloat16x\nfp16\n", "config", "--config-file", file);
        Assert.True(exit == 0, stderr);
        Assert.Contains("processes: give a whole number from 1 to 1024, got 'many'; try again", stdout, StringComparison.Ordinal);
        Assert.Contains("The dtype of the models (fp32, bf16, fp16, as --dtype)? [fp32]: ", stdout, StringComparison.Ordinal);
        Assert.Contains("dtype: give fp32, bf16 or fp16, got 'float16x'; try again", stdout, StringComparison.Ordinal);
        var saved = DistributedInference.Host.Cluster.LaunchConfig.Read(file);
        Assert.Equal((3, "fp16"), (saved.NumProcesses, saved.Dtype));

        // A file written with transformers' spelling reads as the same dtype.
        File.WriteAllText(file, File.ReadAllText(file).Replace("\"fp16\"", "\"float16\"", StringComparison.Ordinal));
        Assert.Equal("fp16", DistributedInference.Host.Cluster.LaunchConfig.Read(file).Dtype);
    }

    [Fact]
    public async Task A_bad_answer_is_a_one_line_error()
    {
        var (exit, _, stderr) = await Di("many\n", "config");
        Assert.Equal(2, exit);
        Assert.Contains("processes: give a whole number from 1 to 1024, got 'many'", stderr, StringComparison.Ordinal);
    }
}
