using DistributedInference.Models.Loading;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di launch</c>: real node processes on 127.0.0.1 forming a cluster.</summary>
[Collection(ProcessTests.Collection)]
public sealed class LaunchTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-launch-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Three_node_processes_reproduce_the_fixture_logits_in_replica_mode()
    {
        var output = Path.Combine(_folder, "logits.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(4), "launch", "--num-processes", "3", "--", "infer", "--mode", "replica", "--devices", "cpu",
            "--task", "logits", "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected, "--output", output, "--max-batch-size", "1");
        Assert.True(exit == 0, stderr);
        Assert.Contains("3 node(s), 3 device(s), job coordinators on 3 control node(s)", stderr, StringComparison.Ordinal);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("lm_logits")) <= 1e-4);
        AssertNodesLeftOneStepAfterTheOther(stderr);

        // The three processes share this machine's cores instead of each using them all.
        if (Models.Runtime.CpuThreads.PerProcess(3, [Models.Runtime.DeviceName.Cpu]) is { } threads)
        {
            Assert.Contains($"di launch: {threads} CPU thread(s) per device (OMP_NUM_THREADS", stderr, StringComparison.Ordinal);
        }
    }

    // The launch says what it waits for while the nodes stop (the younger ones, then the seed, each step once the one
    // before has exited), and every node exits on its own after leaving: none needs the SIGTERM the launch sends a node
    // still running 10 s after it was told to leave, nor a kill.
    private static void AssertNodesLeftOneStepAfterTheOther(string stderr)
    {
        var lines = stderr.Split('\n').Where(l => l.StartsWith("di launch: ", StringComparison.Ordinal)).ToList();
        var younger = lines.FindIndex(l => l.StartsWith("di launch: stopping node(s) 1, 2: leaving the cluster, waiting for their processes to exit", StringComparison.Ordinal));
        var seed = lines.FindIndex(l => l.StartsWith("di launch: stopping node 0 (the seed): leaving the cluster, waiting for its process to exit", StringComparison.Ordinal));
        Assert.True(younger >= 0 && seed > younger, stderr);
        var exited = lines.FindIndex(l => l.StartsWith("di launch: node(s) 1, 2 exited in ", StringComparison.Ordinal));
        var seedExited = lines.FindIndex(l => l.StartsWith("di launch: node 0 (the seed) exited in ", StringComparison.Ordinal));
        Assert.True(younger < exited && exited < seed && seed < seedExited, stderr);
        Assert.DoesNotContain(lines, l => l.Contains("SIGTERM", StringComparison.Ordinal) || l.Contains("killed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Three_node_processes_reproduce_the_fixture_logits_in_pipeline_mode()
    {
        var output = Path.Combine(_folder, "logits.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(4), "launch", "--num-processes", "3", "--", "infer", "--mode", "pipeline", "--devices", "cpu",
            "--task", "logits", "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected, "--output", output, "--num-chunks", "2", "--gather-output");
        Assert.True(exit == 0, stderr);
        Assert.Contains("pipeline plan over 3 node(s)", stderr, StringComparison.Ordinal);
        Assert.Equal(3, stderr.Split('\n').Where(l => l.StartsWith("stage ", StringComparison.Ordinal)).Select(l => l[l.IndexOf('@', StringComparison.Ordinal)..]).Distinct().Count());
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("lm_logits")) <= 1e-4);
        AssertNodesLeftOneStepAfterTheOther(stderr);
    }

    [Theory]
    [InlineData(new[] { "--num-processes", "2" }, "give the job after --")]
    [InlineData(new[] { "--num-processes", "2", "--", "infer", "--join", "127.0.0.1:4053" }, "give the job without --join")]
    [InlineData(new[] { "--num-processes", "0", "--", "infer", "--model", "gpt2-tiny", "--prompts", "a" }, "--num-processes must be positive")]
    public async Task Bad_launches_are_one_line_errors(string[] args, string message)
    {
        var (exit, _, stderr) = await DiRunner.Run(["launch", .. args]);
        Assert.Equal(2, exit);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }
}
