using DistributedInference.Host.Cluster;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// <c>di infer --join host:port</c>: a client joins node processes that are already running, runs the job on their
/// devices, and leaves; the nodes keep serving.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ClusterClientTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private readonly string _folder = Directory.CreateTempSubdirectory("di-client-").FullName;
    private readonly ITestOutputHelper _log;

    public ClusterClientTests(ITestOutputHelper log) => _log = log;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static Task<LocalCluster> Nodes(int count) => LocalCluster.StartAsync(
        count, _ => ["--devices", "cpu", "--model", DiRunner.TinyLanguageModel, "--task", "logits"], TextWriter.Null, CancellationToken.None);

    private async Task<string> Infer(string seed, string mode, string? model = null)
    {
        var output = Path.Combine(_folder, $"{mode}-{Guid.NewGuid():N}.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", seed, "--mode", mode, "--task", "logits",
            "--model", model ?? DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected, "--output", output, "--max-batch-size", "1");
        _log.WriteLine(stderr);
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("lm_logits")) <= 1e-4);
        return stderr;
    }

    [Fact]
    public async Task A_client_runs_replica_and_pipeline_jobs_on_running_nodes_one_after_the_other()
    {
        await using var nodes = await Nodes(2);
        Assert.Contains("2 node(s), 2 device(s)", await Infer(nodes.Seed, "replica"), StringComparison.Ordinal);
        Assert.Contains("pipeline plan over 2 node(s)", await Infer(nodes.Seed, "pipeline"), StringComparison.Ordinal);
        Assert.All(nodes.Processes, p => Assert.False(p.HasExited));
    }

    [Fact]
    public async Task A_job_for_another_task_than_the_nodes_serve_is_a_one_line_error()
    {
        await using var nodes = await Nodes(1);
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", nodes.Seed, "--task", "generate",
            "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected);
        Assert.Equal(2, exit);
        Assert.Contains("not task generate: start the nodes with --task generate", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_replica_job_for_another_model_than_the_nodes_serve_is_a_one_line_error()
    {
        await using var nodes = await Nodes(1);
        var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", nodes.Seed, "--mode", "replica", "--task", "logits",
            "--model", "gpt2-tiny", "--input-ids", DiRunner.Expected);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Contains($"di: error: no device serves model {ModelIdentity.BuiltIn("gpt2-tiny", 0)} (they serve lm #", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public async Task A_built_in_with_another_seed_is_another_model()
    {
        await using var nodes = await LocalCluster.StartAsync(
            1, _ => ["--devices", "cpu", "--model", "gpt2-tiny", "--seed", "3", "--task", "logits"], TextWriter.Null, CancellationToken.None);
        var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", nodes.Seed, "--mode", "replica", "--task", "logits",
            "--model", "gpt2-tiny", "--seed", "4", "--input-ids", DiRunner.Expected);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Contains($"no device serves model {ModelIdentity.BuiltIn("gpt2-tiny", 4)} (they serve {ModelIdentity.BuiltIn("gpt2-tiny", 3)} (logits, fp32))", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Folders_of_the_same_name_are_different_models_and_a_job_gets_the_nodes_generation_options_or_an_error()
    {
        static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");
        await using var nodes = await LocalCluster.StartAsync(
            1, _ => ["--devices", "cpu", "--model", Model("llama3-tiny"), "--task", "generate", "--max-new-tokens", "4"], TextWriter.Null, CancellationToken.None);

        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", nodes.Seed, "--model", Model("mistral-tiny"), "--task", "generate",
            "--input-ids", Path.Combine(DiRunner.Fixtures, "mistral-tiny", "expected.safetensors"), "--max-new-tokens", "4");
        Assert.Equal(2, exit);
        Assert.Contains("no device serves model model #", stderr, StringComparison.Ordinal);

        (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", nodes.Seed, "--model", Model("llama3-tiny"), "--task", "generate",
            "--prompts", "hello", "--max-new-tokens", "3");
        Assert.Equal(2, exit);
        Assert.Contains("but the job asks for (generate, fp32, max_new_tokens 3, greedy)", stderr, StringComparison.Ordinal);

        (exit, var stdout, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", nodes.Seed, "--model", Model("llama3-tiny"), "--task", "generate",
            "--prompts", "hello", "--max-new-tokens", "4");
        Assert.True(exit == 0, stderr);
        Assert.Contains("\"output_ids\":[", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Other_weights_of_the_same_name_and_layout_are_refused_in_replica_and_pipeline_mode_and_a_renamed_copy_runs()
    {
        // The nodes serve lm; the client names "lm" elsewhere with one weight changed, then a renamed copy of lm.
        var changed = DiRunner.CopyModel(DiRunner.TinyLanguageModel, Path.Combine(_folder, "other", "lm"), changeOneWeight: true);
        var renamed = DiRunner.CopyModel(DiRunner.TinyLanguageModel, Path.Combine(_folder, "lm-renamed"), changeOneWeight: false);
        var (served, asked) = (ModelIdentity.Of(DiRunner.TinyLanguageModel, null), ModelIdentity.Of(changed, null));
        await using var nodes = await Nodes(1);

        foreach (var (mode, start, end) in new[]
                 {
                     ("replica", $"di: error: no device serves model {asked} (they serve {served} (logits, fp32))", $": run the job for a model they serve, or start devices with model {asked}"),
                     ("pipeline", "di: error: node akka", $" serves model {served} (logits), not {asked} (logits): run the job for the model the nodes serve, or start every node with the job's --model and --task"),
                 })
        {
            var output = Path.Combine(_folder, $"{mode}.safetensors");
            var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", nodes.Seed, "--mode", mode, "--task", "logits",
                "--model", changed, "--input-ids", DiRunner.Expected, "--output", output, "--quiet");
            _log.WriteLine(stderr);
            Assert.Equal(2, exit);
            Assert.Equal(string.Empty, stdout);
            var line = Assert.Single(stderr.TrimEnd().Split('\n'));
            Assert.StartsWith(start, line, StringComparison.Ordinal);
            Assert.EndsWith(end, line, StringComparison.Ordinal);
            Assert.False(File.Exists(output));
        }

        Assert.Contains("1 node(s), 1 device(s)", await Infer(nodes.Seed, "replica", renamed), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_two_node_cluster_survives_a_kill_9_of_its_younger_node()
    {
        await using var nodes = await Nodes(2);
        nodes.Processes[1].Kill();
        await nodes.Processes[1].WaitForExitAsync();

        // Keep-oldest: the seed (oldest) downs the unreachable node and keeps serving; the job runs on its device alone.
        Assert.Contains("1 node(s), 1 device(s)", await Infer(nodes.Seed, "replica"), StringComparison.Ordinal);
        Assert.False(nodes.Processes[0].HasExited);
    }

    [Fact]
    public async Task A_pipeline_job_survives_a_kill_9_of_a_stage_node_by_planning_again()
    {
        await using var nodes = await LocalCluster.StartAsync(
            3, _ => ["--devices", "cpu", "--model", DiRunner.TinyClassifier, "--task", "classify", "--serve", "pipeline"], TextWriter.Null, CancellationToken.None);
        var input = Path.Combine(_folder, "rows.safetensors");
        var ids = DiRunner.ExpectedTensor("cls_input_ids");
        const int Repeats = 500;
        TorchSharp.torch.Tensor Repeated(TorchSharp.torch.Tensor t) => TorchSharp.torch.cat(Enumerable.Repeat(t, Repeats).ToArray(), 0);
        SafeTensorsFile.Write(input, new Dictionary<string, TorchSharp.torch.Tensor> { ["input_ids"] = Repeated(ids) });
        var output = Path.Combine(_folder, "cls.safetensors");

        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "infer", "--join", nodes.Seed, "--mode", "pipeline", "--task", "classify",
                     "--model", DiRunner.TinyClassifier, "--input-ids", input, "--output", output, "--max-batch-size", "1" })
        {
            start.ArgumentList.Add(arg);
        }

        using var client = System.Diagnostics.Process.Start(start)!;
        using var reaper = DiRunner.KillOnDispose(client);
        var stdout = client.StandardOutput.ReadToEndAsync();
        var stderr = new System.Text.StringBuilder();
        var killed = false;
        while (await client.StandardError.ReadLineAsync().WaitAsync(Timeout) is { } line)
        {
            stderr.AppendLine(line);
            if (!killed && line.Contains("pipeline plan over 3 node(s)", StringComparison.Ordinal))
            {
                // The job is starting on three stages, one per node: take the youngest node away without a goodbye.
                nodes.Processes[2].Kill();
                killed = true;
            }
        }

        await client.WaitForExitAsync().WaitAsync(Timeout);
        await stdout;
        _log.WriteLine(stderr.ToString());
        Assert.True(client.ExitCode == 0, stderr.ToString());
        Assert.Contains("planning again over the nodes up now", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("pipeline plan over 2 node(s)", stderr.ToString(), StringComparison.Ordinal);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), Repeated(DiRunner.ExpectedTensor("cls_logits"))) <= 1e-4);
    }

    [Fact]
    public async Task Clients_and_a_node_leaving_are_information_in_the_nodes_log_not_warnings_or_errors()
    {
        // At INFO the nodes log everything, so the clients' departures are there: as information, one line each.
        var config = Path.Combine(_folder, "info.conf");
        await File.WriteAllTextAsync(config, "akka.loglevel = INFO\n");
        var log = new LogLines();
        await using var nodes = await LocalCluster.StartAsync(
            2, _ => ["--devices", "cpu", "--model", DiRunner.TinyLanguageModel, "--task", "logits", "--verbose", "--config-file", config], log, CancellationToken.None, forwardStderr: true);
        await Infer(nodes.Seed, "replica");
        await Infer(nodes.Seed, "pipeline");

        // What this test is about is the log itself: each departure is logged, at INFO, by the seed.
        static bool Removed(string line) => line.StartsWith("[node 0] [INFO]", StringComparison.Ordinal) && line.Contains("Member removed", StringComparison.Ordinal);
        await log.WhenWritten(Removed, Timeout, "the seed's INFO lines on the two clients' removal", count: 2);

        // The younger node leaves (SIGTERM) and is removed.
        using (var term = System.Diagnostics.Process.Start("kill", ["-TERM", nodes.Processes[1].Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await term.WaitForExitAsync();
        }

        await nodes.Processes[1].WaitForExitAsync().WaitAsync(Timeout);
        await log.WhenWritten(Removed, Timeout, "the seed's INFO line on the younger node's removal", count: 3);
        await Task.Delay(TimeSpan.FromSeconds(3));

        var all = log.Lines;
        _log.WriteLine(string.Join('\n', all.Where(l => !l.Contains("[INFO]", StringComparison.Ordinal))));
        // Departures were logged (the waits above saw them as INFO); with authenticated data-plane connections closing
        // first, Akka may have no association error left to report, so none is required.
        // A heartbeat that arrives late on a loaded machine is a real warning, not a departure: it may appear.
        Assert.DoesNotContain(all, l => (l.Contains("] [WARNING]", StringComparison.Ordinal) && !l.Contains("PhiAccrualFailureDetector", StringComparison.Ordinal)) || l.Contains("] [ERROR]", StringComparison.Ordinal));
        Assert.DoesNotContain(all, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal) || l.Contains("] " + "   at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_verbose_client_whose_job_survives_a_node_loss_prints_no_error_and_no_stack_trace()
    {
        // The node lost offers only devices, so the job's coordinator (on a control node) survives it: losing the
        // coordinator's own node is the runtime-contracts issue's case, not this log test's.
        await using var nodes = await LocalCluster.StartAsync(
            2, i => ["--devices", "cpu", "--model", DiRunner.TinyLanguageModel, "--task", "logits", .. (i == 1 ? new[] { "--roles", "device" } : [])], TextWriter.Null, CancellationToken.None);
        var input = Path.Combine(_folder, "rows.safetensors");
        const int Repeats = 100;
        TorchSharp.torch.Tensor Repeated(TorchSharp.torch.Tensor t) => TorchSharp.torch.cat(Enumerable.Repeat(t, Repeats).ToArray(), 0);
        SafeTensorsFile.Write(input, new Dictionary<string, TorchSharp.torch.Tensor> { ["input_ids"] = Repeated(DiRunner.ExpectedTensor("input_ids")) });
        var output = Path.Combine(_folder, "logits.safetensors");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "infer", "--join", nodes.Seed, "--mode", "replica", "--task", "logits",
                     "--model", DiRunner.TinyLanguageModel, "--input-ids", input, "--output", output, "--max-batch-size", "1", "--verbose" })
        {
            start.ArgumentList.Add(arg);
        }

        using var client = System.Diagnostics.Process.Start(start)!;
        var stdout = client.StandardOutput.ReadToEndAsync();
        var stderr = new List<string>();
        while (await client.StandardError.ReadLineAsync().WaitAsync(Timeout) is { } line)
        {
            stderr.Add(line);
            if (line.StartsWith("di: 2 node(s)", StringComparison.Ordinal))
            {
                nodes.Processes[1].Kill();
            }
        }

        await client.WaitForExitAsync().WaitAsync(Timeout);
        await stdout;
        _log.WriteLine(string.Join('\n', stderr));
        Assert.True(client.ExitCode == 0, string.Join('\n', stderr));
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), Repeated(DiRunner.ExpectedTensor("lm_logits"))) <= 1e-4);
        Assert.DoesNotContain(stderr, l => l.StartsWith("[ERROR]", StringComparison.Ordinal));
        Assert.DoesNotContain(stderr, l => l.Length > 0 && char.IsWhiteSpace(l[0]));
        // What a verbose client may warn of is the node lost (marked unreachable, downed, retried until it is removed):
        // how many such lines depends on how long the job runs, so only their subject is checked.
        var lost = $"127.0.0.1:{nodes.Ports[1]}";
        Assert.All(stderr.Where(l => l.StartsWith("[WARNING]", StringComparison.Ordinal)), l => Assert.Contains(lost, l, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("infer", "--seed", "abc", "--seed abc: give a whole number")]
    [InlineData("infer", "--seed", "127.0.0.1:4053", "--seed 127.0.0.1:4053: --seed is a number (random weights); to run on a cluster give --join 127.0.0.1:4053")]
    [InlineData("node", "--seed", "127.0.0.1:4053", "--seed 127.0.0.1:4053: --seed is a number (random weights); to run on a cluster give --join 127.0.0.1:4053")]
    [InlineData("infer", "--seed", "1", "--seed 2", "--seed")]
    [InlineData("infer", "--join", "127.0.0.1", "--join 127.0.0.1: use host:port")]
    public async Task Seed_is_only_a_number_and_join_only_host_port_one_line_exit_2(params string[] argsAndMessage)
    {
        string[] extra = argsAndMessage[0] == "infer" ? ["--model", "gpt2-tiny", "--prompts", "a", "--max-new-tokens", "1"] : [];
        string[] args = [.. argsAndMessage[..^1].SelectMany(a => a.Split(' ')), .. extra];
        var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, args);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.StartsWith("di: error: ", stderr, StringComparison.Ordinal);
        Assert.Contains(argsAndMessage[^1], stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}
