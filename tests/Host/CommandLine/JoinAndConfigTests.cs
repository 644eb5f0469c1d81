using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DistributedInference.Models.Loading;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>Joining a cluster gives up within the join timeout; flags beat the config file; a failing node is named at once.</summary>
[Collection(ProcessTests.Collection)]
public sealed class JoinAndConfigTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private readonly string _folder = Directory.CreateTempSubdirectory("di-join-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string ConfigFile(string text)
    {
        var path = Path.Combine(_folder, $"{Guid.NewGuid():N}.conf");
        File.WriteAllText(path, text);
        return path;
    }

    private static void AssertOneLine(string stderr) => Assert.Single(stderr.TrimEnd().Split('\n'));

    [Fact]
    public async Task A_client_that_cannot_join_says_so_in_one_line_within_the_join_timeout()
    {
        var port = DiRunner.FreePort();
        var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", $"127.0.0.1:{port}", "--join-timeout", "2",
            "--model", "gpt2-tiny", "--task", "logits", "--prompts", "a");
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.StartsWith($"di: error: could not join the cluster at 127.0.0.1:{port} within 2 s", stderr, StringComparison.Ordinal);
        AssertOneLine(stderr);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("1e309")]
    public async Task A_join_timeout_that_is_no_positive_number_is_one_line_and_exit_2(string seconds)
    {
        string[][] commands = [["infer", "--prompts", "a"], ["node"]];
        foreach (var command in commands)
        {
            var (exit, stdout, stderr) = await DiRunner.Run([.. command, "--join", "127.0.0.1:1", "--join-timeout", seconds, "--model", "gpt2-tiny", "--task", "logits"]);
            Assert.Equal(2, exit);
            Assert.Equal(string.Empty, stdout);
            Assert.Contains($"--join-timeout {seconds}: must be a positive number of seconds", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(" at ", stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_client_or_node_joining_a_host_that_does_not_resolve_says_so_in_one_line()
    {
        string[][] commands = [["infer", "--prompts", "a"], ["node"]];
        foreach (var command in commands)
        {
            var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, [.. command, "--join", "nosuchhost.invalid:4053", "--model", "gpt2-tiny", "--task", "logits"], input: null);
            Assert.Equal(2, exit);
            Assert.Equal(string.Empty, stdout);
            Assert.StartsWith("di: error: --join nosuchhost.invalid:4053: cannot resolve nosuchhost.invalid", stderr, StringComparison.Ordinal);
            AssertOneLine(stderr);
        }
    }

    [Fact]
    public async Task A_node_that_cannot_join_gives_up_after_the_config_files_join_timeout_and_the_flag_beats_it()
    {
        var port = DiRunner.FreePort();
        var config = ConfigFile("distributed-inference.join-timeout = 1s");
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "node", "--join", $"127.0.0.1:{port}", "--config-file", config, "--model", "gpt2-tiny", "--task", "logits");
        Assert.Equal(2, exit);
        Assert.StartsWith($"di: error: could not join the cluster at 127.0.0.1:{port} within 1 s", stderr, StringComparison.Ordinal);
        AssertOneLine(stderr);

        var (flagExit, _, flagStderr) = await DiRunner.RunProcess(Timeout, "node", "--join", $"127.0.0.1:{port}", "--config-file", config, "--join-timeout", "2.5", "--model", "gpt2-tiny", "--task", "logits");
        Assert.Equal(2, flagExit);
        Assert.Contains("within 2.5 s", flagStderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_flags_override_a_config_file_from_di_config_default()
    {
        var config = Path.Combine(_folder, "di.conf");
        var (configExit, _, configStderr) = await DiRunner.RunProcess(Timeout, "config", "default", "--config-file", config);
        Assert.True(configExit == 0, configStderr);
        var port = DiRunner.FreePort();

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "node", "--host", "127.0.0.1", "--port", $"{port}", "--config-file", config, "--model", "gpt2-tiny", "--task", "logits" })
        {
            start.ArgumentList.Add(arg);
        }

        using var node = Process.Start(start)!;
        try
        {
            var line = await node.StandardOutput.ReadLineAsync().WaitAsync(Timeout);
            Assert.StartsWith($"di node: up at 127.0.0.1:{port} (data plane 127.0.0.1:", line, StringComparison.Ordinal);
        }
        finally
        {
            node.Kill(entireProcessTree: true);
            await node.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task A_launch_whose_nodes_fail_names_the_node_and_its_error_within_seconds()
    {
        var config = ConfigFile("distributed-inference.max-batch-size = 0");
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "launch", "--num-processes", "2", "--config-file", config, "--",
            "infer", "--task", "logits", "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected);
        Assert.Equal(2, exit);
        // The node's own error, not the launch's start timeout (node 0 was not up within 120 s): it gave up at once.
        Assert.Contains("di: error: node 0 did not start: di: error: distributed-inference.max-batch-size must be positive, got 0", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_launch_with_the_default_config_file_runs_the_job()
    {
        var config = Path.Combine(_folder, "di.conf");
        Assert.Equal(0, (await DiRunner.Run("config", "default", "--config-file", config)).ExitCode);
        var output = Path.Combine(_folder, "logits.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "launch", "--num-processes", "2", "--config-file", config, "--",
            "infer", "--task", "logits", "--devices", "cpu", "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected, "--output", output);
        Assert.True(exit == 0, stderr);
        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("lm_logits")) <= 1e-4);
    }

    [Fact]
    public async Task One_failure_is_one_line_and_Akka_log_lines_show_only_with_verbose()
    {
        var model = Path.Combine(_folder, "three-layers");
        Directory.CreateDirectory(model);
        File.Copy(Path.Combine(DiRunner.TinyLanguageModel, "model.safetensors"), Path.Combine(model, "model.safetensors"));
        File.WriteAllText(Path.Combine(model, "config.json"), File.ReadAllText(Path.Combine(DiRunner.TinyLanguageModel, "config.json")).Replace("\"n_layer\": 2", "\"n_layer\": 3", StringComparison.Ordinal));
        string[] args = ["infer", "--model", model, "--task", "logits", "--input-ids", DiRunner.Expected];

        var (exit, _, stderr) = await DiRunner.RunProcess(Timeout, args);
        Assert.Equal(2, exit);
        Assert.Equal("di: error: cpu: could not load the model: " + model + ": checkpoint has no tensor for transformer.h.2.ln_1.weight", stderr.Trim());

        var (verboseExit, _, verboseStderr) = await DiRunner.RunProcess(Timeout, [.. args, "--verbose"]);
        Assert.Equal(2, verboseExit);
        Assert.Contains("[ERROR] ", verboseStderr, StringComparison.Ordinal);

        var log = Path.Combine(_folder, "akka.log");
        var (logExit, _, logStderr) = await DiRunner.RunProcess(Timeout, [.. args, "--log-file", log]);
        Assert.Equal(2, logExit);
        AssertOneLine(logStderr);
        Assert.Contains("[ERROR] ", File.ReadAllText(log), StringComparison.Ordinal);
    }
}
