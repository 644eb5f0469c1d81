using System.Diagnostics;
using DistributedInference.Host.Cluster;

namespace DistributedInference.Host.Tests.Batch;

/// <summary>
/// <c>di batch --join</c> over three <c>di node --serve requests</c>: one node killed with SIGKILL mid-batch costs no
/// request. Its jobs' rows are submitted again to the surviving nodes (the replica path's resubmission) and the output
/// has every request once, with the answers of a batch run on this process's own device.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class BatchNodeLossTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    private readonly string _folder = Directory.CreateTempSubdirectory("di-batch-node-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task A_node_killed_mid_batch_costs_no_request()
    {
        const int count = 200;
        var input = Path.Combine(_folder, "in.jsonl");
        File.WriteAllLines(input, BatchFiles.Mixed(count));
        string[] Args(string output) => ["batch", "--model", BatchFiles.Qwen2, "--chat-template", BatchFiles.QwenTemplate, "--input", input, "--output", output,
            "--max-batch-size", "2", "--job-rows", "4", "--window", "32", "--jobs-in-flight", "3"];

        var local = Path.Combine(_folder, "local.jsonl");
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, Args(local));
        Assert.True(exit == 0, stderr);
        var expected = BatchFiles.Answers(local);

        var log = new LogLines();
        await using var nodes = await LocalCluster.StartAsync(
            3, _ => ["--devices", "cpu", "--model", BatchFiles.Qwen2, "--task", "generate", "--serve", "requests"], log, CancellationToken.None, forwardStderr: true);
        var output = Path.Combine(_folder, "cluster.jsonl");
        using var batch = DiRunner.StartProcess(Args(output).Concat(["--join", nodes.Seed]));
        using var reaper = DiRunner.KillOnDispose(batch);
        var err = batch.StandardError.ReadToEndAsync();
        _ = batch.StandardOutput.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!batch.HasExited && BatchFiles.LineCount(output) < count / 4 && clock.Elapsed < Timeout)
        {
            await Task.Delay(20);
        }

        Assert.False(batch.HasExited, $"the batch ended before the kill:\n{await err}");
        nodes.Processes[2].Kill();
        await batch.WaitForExitAsync().WaitAsync(Timeout);
        var text = await err;
        Assert.True(batch.ExitCode == 0, $"{text}\n{log}");
        Assert.Equal(expected.OrderBy(a => a.Key), BatchFiles.Answers(output).OrderBy(a => a.Key));
    }
}
