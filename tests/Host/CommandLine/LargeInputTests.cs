using DistributedInference.Models.Loading;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// User data never rides in a control message: a replica job's input larger than Akka's frame goes to its coordinator
/// by the data plane (the coordinator fetches it from the client), each batch larger than the frame goes to a device on
/// another node by the data plane too, and the job runs across the processes. The frame is lowered to 1 MiB here (every
/// node and the client read the launch's config file) to keep the input small and the test quick.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class LargeInputTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    private readonly string _folder = Directory.CreateTempSubdirectory("di-large-").FullName;
    private readonly ITestOutputHelper _log;

    public LargeInputTests(ITestOutputHelper log) => _log = log;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task A_replica_job_whose_input_and_batches_are_larger_than_akkas_frame_runs_across_processes()
    {
        // 6600 x 128 int64 ids: 6.8 MB, over the 1 MiB frame; so is each batch of 1100 rows (1.1 MB). Each device's share is
        // 3 batches and a device has 2 in flight, so the device on the other node is sent batches from the start, and gets
        // them only by the data plane (Akka drops them, and they would wait for their 10 min batch timeout).
        var input = Path.Combine(_folder, "rows.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(0, 1000, [6600, 128], dtype: ScalarType.Int64) });
        Assert.True(new FileInfo(input).Length > 6 << 20);
        var expected = Path.Combine(_folder, "single.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--mode", "replica", "--task", "classify", "--model", DiRunner.TinyClassifier,
            "--input-ids", input, "--output", expected, "--max-batch-size", "1100");
        Assert.True(exit == 0, stderr);

        var config = Path.Combine(_folder, "small-frame.conf");
        await File.WriteAllTextAsync(config, "akka.remote.dot-netty.tcp.maximum-frame-size = 1MiB\n");
        var output = Path.Combine(_folder, "cluster.safetensors");
        // --verbose: the nodes' Akka log lines come too, where a batch Akka had to drop would show (OversizedPayloadException).
        (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "launch", "--verbose", "--num-processes", "2", "--config-file", config, "--", "infer", "--mode", "replica",
            "--task", "classify", "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output, "--max-batch-size", "1100");
        _log.WriteLine(stderr);
        Assert.True(exit == 0, stderr);
        Assert.Contains("2 node(s), 2 device(s)", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Oversized", stderr, StringComparison.OrdinalIgnoreCase);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), SafeTensorsFile.Open(expected).Read("logits")) <= 1e-4);
    }
}
