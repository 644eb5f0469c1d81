namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di launch -- PROGRAM</c>: a user's program (here a shell script) run N times as one process group.</summary>
[Collection(ProcessTests.Collection)]
public sealed class ProgramLaunchTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-program-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Script(string body)
    {
        var path = Path.Combine(_folder, "program.sh");
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return path;
    }

    [Fact]
    public async Task Every_process_gets_its_rank_its_device_and_the_group_in_its_environment()
    {
        var script = Script("echo \"RANK=$RANK WORLD_SIZE=$WORLD_SIZE LOCAL_RANK=$LOCAL_RANK LOCAL_WORLD_SIZE=$LOCAL_WORLD_SIZE MASTER=$MASTER_ADDR:$MASTER_PORT DI_DEVICE=$DI_DEVICE SECRET=${#DI_CLUSTER_SECRET}\"; echo \"err $RANK\" >&2");
        var (exit, stdout, stderr) = await DiRunner.Run("launch", "--num-processes", "3", "--devices", "cuda:0,cuda:1", "--main-process-port", "29517", "--", script);
        Assert.True(exit == 0, stderr);
        for (var rank = 0; rank < 3; rank++)
        {
            Assert.Contains($"[rank {rank}] RANK={rank} WORLD_SIZE=3 LOCAL_RANK={rank} LOCAL_WORLD_SIZE=3 MASTER=127.0.0.1:29517 DI_DEVICE=cuda:{rank % 2} SECRET=43", stdout, StringComparison.Ordinal);
            Assert.Contains($"[rank {rank}] err {rank}", stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Main_process_output_only_shows_rank_0()
    {
        var script = Script("echo \"hello from $RANK\"");
        var (exit, stdout, stderr) = await DiRunner.Run("launch", "--num-processes", "2", "--main-process-output-only", "--", script);
        Assert.True(exit == 0, stderr);
        Assert.Equal("[rank 0] hello from 0", stdout.Trim());
    }

    [Fact]
    public async Task A_rank_that_exits_3_stops_the_others_and_the_launch_exits_3()
    {
        // Ranks 0 and 2 would sleep for ten minutes; on SIGTERM they say so (a file) and end. Rank 1 fails once both are
        // waiting (their pid files are written after their trap is set).
        var script = Script($$"""
            if [ "$RANK" = 1 ]; then
              while [ ! -e {{_folder}}/pid-0 ] || [ ! -e {{_folder}}/pid-2 ]; do sleep 0.1; done
              exit 3
            fi
            trap 'kill $child 2>/dev/null; echo $RANK > {{_folder}}/stopped-$RANK; exit 143' TERM
            sleep 600 &
            child=$!
            echo $$ > {{_folder}}/pid-$RANK.tmp && mv {{_folder}}/pid-$RANK.tmp {{_folder}}/pid-$RANK
            wait $child
            """);
        var (exit, _, stderr) = await DiRunner.Run("launch", "--num-processes", "3", "--", script).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(3, exit);
        Assert.Contains("di launch: rank 1 exited with code 3; stopping the others", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("killed", stderr, StringComparison.Ordinal);
        foreach (var rank in new[] { 0, 2 })
        {
            // The launch stopped it (its SIGTERM), not the end of its sleep; and it is gone.
            Assert.True(File.Exists(Path.Combine(_folder, $"stopped-{rank}")), $"rank {rank} was not stopped by the launch:\n{stderr}");
            var pid = int.Parse(File.ReadAllText(Path.Combine(_folder, $"pid-{rank}")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.False(Directory.Exists($"/proc/{pid}"), $"rank {rank} (pid {pid}) still runs");
        }
    }

    [Fact]
    public async Task A_program_that_does_not_exist_is_a_one_line_error()
    {
        var (exit, _, stderr) = await DiRunner.Run("launch", "--num-processes", "2", "--", Path.Combine(_folder, "no-such-program"));
        Assert.Equal(2, exit);
        Assert.Contains("cannot start", stderr, StringComparison.Ordinal);
    }
}
