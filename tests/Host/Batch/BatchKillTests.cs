using System.Diagnostics;

namespace DistributedInference.Host.Tests.Batch;

/// <summary>
/// Exactly once across crashes: <c>di batch</c> killed with SIGKILL at three moments (after a quarter, half and three
/// quarters of the answers are in the output) and run again each time ends with every request answered once, with the
/// answers of a run that was never interrupted.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class BatchKillTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    private readonly string _folder = Directory.CreateTempSubdirectory("di-batch-kill-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Kill_9_at_three_moments_and_resumed_each_time_answers_every_request_once_as_an_uninterrupted_run()
    {
        const int count = 300;
        var input = Path.Combine(_folder, "in.jsonl");
        File.WriteAllLines(input, BatchFiles.Mixed(count));
        string[] Args(string output) => ["batch", "--model", BatchFiles.Qwen2, "--chat-template", BatchFiles.QwenTemplate, "--input", input, "--output", output,
            "--max-batch-size", "4", "--job-rows", "8", "--window", "32", "--jobs-in-flight", "2"];

        var whole = Path.Combine(_folder, "whole.jsonl");
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, Args(whole));
        Assert.True(exit == 0, stderr);
        var expected = BatchFiles.Answers(whole);
        Assert.Equal(count + 6, expected.Count);

        var output = Path.Combine(_folder, "killed.jsonl");
        var kills = 0;
        foreach (var quarter in new[] { 1, 2, 3 })
        {
            // The run holds still once the output has a quarter, half, three quarters of the answers (the writer's test
            // seam), and is killed there: the moment does not depend on how fast the machine is.
            var target = (count + 6) * quarter / 4;
            var environment = new Dictionary<string, string> { ["DI_TEST_BATCH_HOLD_AFTER_LINES"] = $"{target - BatchFiles.LineCount(output)}" };
            using var batch = DiRunner.StartProcess(Args(output), environment);
            using var reaper = DiRunner.KillOnDispose(batch);
            var err = batch.StandardError.ReadToEndAsync();
            _ = batch.StandardOutput.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            while (!batch.HasExited && BatchFiles.LineCount(output) < target && clock.Elapsed < Timeout)
            {
                await Task.Delay(20);
            }

            if (batch.HasExited)
            {
                Assert.Fail($"the run ended before its {target}th answer: {await err}");
            }

            Assert.Equal(target, BatchFiles.LineCount(output));
            batch.Kill();
            kills++;
            await batch.WaitForExitAsync().WaitAsync(Timeout);
            await err;
        }

        (exit, _, stderr) = await DiRunner.RunProcess(Timeout, Args(output));
        Assert.True(exit == 0, stderr);
        Assert.Equal(3, kills);
        Assert.Equal(expected.OrderBy(a => a.Key), BatchFiles.Answers(output).OrderBy(a => a.Key));
    }
}
