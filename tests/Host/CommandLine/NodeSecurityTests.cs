using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DistributedInference.Host.Cluster;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary><c>di node</c> start-up checks and <c>di secret</c> / <c>di cert</c>, as a user runs them.</summary>
[Collection(ProcessTests.Collection)]
public sealed class NodeSecurityTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Two_nodes_on_one_port_the_second_refuses_to_start()
    {
        var port = DiRunner.FreePort();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "node", "--host", "127.0.0.1", "--port", $"{port}", "--roles", "control" })
        {
            start.ArgumentList.Add(arg);
        }

        using var first = Process.Start(start)!;
        try
        {
            var line = await first.StandardOutput.ReadLineAsync().WaitAsync(Timeout);
            Assert.Matches($"^di node: up at 127\\.0\\.0\\.1:{port} \\(data plane 127\\.0\\.0\\.1:[0-9]+\\)$", line);

            var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "node", "--host", "127.0.0.1", "--port", $"{port}", "--roles", "control");
            Assert.Equal(2, exit);
            Assert.Equal(string.Empty, stdout);
            Assert.Equal($"di: error: --port 127.0.0.1:{port} is already in use (another di node there?): choose another port", stderr.Trim());
        }
        finally
        {
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task A_node_or_client_with_the_wrong_secret_cannot_take_part_and_says_so_in_one_line()
    {
        var folder = Directory.CreateTempSubdirectory("di-secret-").FullName;
        try
        {
            var right = Path.Combine(folder, "right.secret");
            var wrong = Path.Combine(folder, "wrong.secret");
            await File.WriteAllTextAsync(right, Actors.Kernel.Membership.ClusterSecurity.NewSecret());
            await File.WriteAllTextAsync(wrong, Actors.Kernel.Membership.ClusterSecurity.NewSecret());
            await using var nodes = await LocalCluster.StartAsync(
                1, _ => ["--roles", "control"], TextWriter.Null, CancellationToken.None, secret: (await File.ReadAllTextAsync(right)).Trim());

            // A node with another secret is refused and downed by the cluster: one line, exit 2, never "up".
            var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "node", "--join", nodes.Seed, "--roles", "control", "--secret-file", wrong);
            Assert.Equal(2, exit);
            Assert.Equal(string.Empty, stdout);
            Assert.Equal(
                "di: error: the cluster refused this node: its proof of the cluster secret is wrong (is --secret-file or DI_CLUSTER_SECRET the cluster's secret?)",
                stderr.Trim());

            // So is a node with no secret at all (loopback), and a client with another secret fails fast the same way.
            (exit, _, stderr) = await DiRunner.RunProcess(Timeout, "node", "--join", nodes.Seed, "--roles", "control");
            Assert.Equal(2, exit);
            Assert.StartsWith("di: error: the cluster refused this node: ", stderr, StringComparison.Ordinal);
            (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "infer", "--join", nodes.Seed, "--secret-file", wrong, "--task", "logits",
                "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected, "--output", Path.Combine(folder, "logits.safetensors"));
            Assert.Equal(2, exit);
            Assert.Equal(string.Empty, stdout);
            Assert.StartsWith("di: error: the cluster refused this node: ", stderr, StringComparison.Ordinal);
            Assert.Single(stderr.TrimEnd().Split('\n'));

            // The right secret joins.
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "di.dll"), "node", "--join", nodes.Seed, "--roles", "control", "--secret-file", right })
            {
                start.ArgumentList.Add(arg);
            }

            using var member = Process.Start(start)!;
            using var reaper = DiRunner.KillOnDispose(member);
            Assert.StartsWith("di node: up at 127.0.0.1:", await member.StandardOutput.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("--port 70000: a port is 0-65535 (0: any free port)", "node", "--port", "70000")]
    [InlineData("--port -1: a port is 0-65535 (0: any free port)", "node", "--port", "-1")]
    [InlineData("--roles foo: unknown role (use device, control or device,control)", "node", "--roles", "foo")]
    [InlineData("--roles: no role given (use device, control or device,control)", "node", "--roles", "")]
    [InlineData("--roles: no role given (use device, control or device,control)", "node", "--roles", " , ")]
    [InlineData("--host no-such-host.invalid: cannot resolve it to an address", "node", "--host", "no-such-host.invalid", "--roles", "control")]
    [InlineData("--secret-file / is a folder, not a file", "node", "--secret-file", "/", "--roles", "control")]
    [InlineData("the cluster secret has 16 characters, at least 32 are needed", "node", "--secret-file", "SHORT", "--roles", "control")]
    [InlineData("/nonexistent-folder/x.pfx: cannot write the certificate there", "cert", "/nonexistent-folder/x.pfx")]
    public async Task Node_and_cert_input_errors_are_one_line_and_exit_2(string message, params string[] args)
    {
        var folder = Directory.CreateTempSubdirectory("di-input-").FullName;
        try
        {
            var shortSecret = Path.Combine(folder, "short.secret");
            await File.WriteAllTextAsync(shortSecret, "0123456789abcdef");
            var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, [.. args.Select(a => a == "SHORT" ? shortSecret : a)]);
            Assert.Equal(2, exit);
            Assert.Equal(string.Empty, stdout);
            Assert.StartsWith($"di: error: {message}", stderr, StringComparison.Ordinal);
            Assert.Single(stderr.TrimEnd().Split('\n'));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_node_without_a_secret_off_loopback_refuses_to_start_with_one_line_on_how_to_make_one()
    {
        var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "node", "--host", "0.0.0.0", "--roles", "control");
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal(
            "di: error: 0.0.0.0 is not a loopback address and this node has no cluster secret: make one with `di secret > cluster.secret` and give every node and client --secret-file cluster.secret (or set DI_CLUSTER_SECRET)",
            stderr.Trim());
    }

    [Fact]
    public async Task A_client_with_the_clusters_certificate_joins_a_tls_node_and_runs_a_job()
    {
        var folder = Directory.CreateTempSubdirectory("di-tls-").FullName;
        try
        {
            var certificate = Path.Combine(folder, "cluster.pfx");
            var (exit, _, stderr) = await DiRunner.Run("cert", certificate);
            Assert.True(exit == 0, stderr);
            await using var nodes = await LocalCluster.StartAsync(
                1, _ => ["--devices", "cpu", "--model", DiRunner.TinyLanguageModel, "--task", "logits", "--tls-certificate", certificate], TextWriter.Null, CancellationToken.None);
            var output = Path.Combine(folder, "logits.safetensors");
            (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(3), "infer", "--join", nodes.Seed, "--tls-certificate", certificate, "--task", "logits",
                "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected, "--output", output);
            Assert.True(exit == 0, stderr);
            Assert.True(DiRunner.MaxAbsDiff(Models.Loading.SafeTensorsFile.Open(output).Read("logits"), DiRunner.ExpectedTensor("lm_logits")) <= 1e-4);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_client_with_another_certificate_is_told_it_is_the_certificate()
    {
        var folder = Directory.CreateTempSubdirectory("di-tls-").FullName;
        try
        {
            var cluster = Path.Combine(folder, "cluster.pfx");
            var other = Path.Combine(folder, "other.pfx");
            Assert.Equal(0, (await DiRunner.Run("cert", cluster)).ExitCode);
            Assert.Equal(0, (await DiRunner.Run("cert", other)).ExitCode);
            await using var nodes = await LocalCluster.StartAsync(
                1, _ => ["--devices", "cpu", "--model", DiRunner.TinyLanguageModel, "--task", "logits", "--tls-certificate", cluster], TextWriter.Null, CancellationToken.None);

            string[] job = ["infer", "--join", nodes.Seed, "--join-timeout", "5", "--task", "logits", "--model", DiRunner.TinyLanguageModel, "--input-ids", DiRunner.Expected];
            var (exit, stdout, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), [.. job, "--tls-certificate", other], input: null);
            Assert.Equal(2, exit);
            Assert.Equal(string.Empty, stdout);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith($"di: error: could not join the cluster at {nodes.Seed} within 5 s: {nodes.Seed} presents another TLS certificate (", line, StringComparison.Ordinal);
            Assert.Contains("every node and client needs the same certificate", line, StringComparison.Ordinal);

            (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), job, input: null);
            Assert.Equal(2, exit);
            Assert.Contains($"{nodes.Seed} runs TLS (its certificate: ", stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Di_secret_prints_a_new_random_secret_and_di_cert_writes_a_certificate()
    {
        var (exit, first, _) = await DiRunner.Run("secret");
        var (_, second, _) = await DiRunner.Run("secret");
        Assert.Equal(0, exit);
        Assert.Matches("^[A-Za-z0-9_-]{43}$", first.Trim());
        Assert.NotEqual(first, second);

        var folder = Directory.CreateTempSubdirectory("di-cert-").FullName;
        try
        {
            var path = Path.Combine(folder, "cluster.pfx");
            var (certExit, _, certStderr) = await DiRunner.Run("cert", path);
            Assert.True(certExit == 0, certStderr);
            using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(path, string.Empty);
            Assert.True(certificate.HasPrivateKey);

            var (again, _, againStderr) = await DiRunner.Run("cert", path);
            Assert.Equal(2, again);
            Assert.Contains("exists", againStderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
