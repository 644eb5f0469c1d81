using System.Net;
using System.Text.Json;
using DistributedInference.Host.Cluster;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// Operating a cluster: <c>di status</c> lists the members and their devices, and sees a node killed with <c>kill -9</c>
/// go unreachable or removed; <c>di node --metrics-port</c> answers Prometheus scrapes and Kubernetes-style probes; a
/// cluster that cannot be reached is exit 2.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ClusterStatusTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Status_lists_three_members_and_their_devices_and_sees_a_killed_node_leave()
    {
        var metricsPort = DiRunner.FreePort();
        var log = new LogLines();
        await using var nodes = await LocalCluster.StartAsync(
            3, i => ["--devices", "cpu", "--model", DiRunner.TinyClassifier, "--task", "classify", .. (i == 0 ? new[] { "--metrics-port", metricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture) } : [])],
            log, CancellationToken.None, forwardStderr: true);

        var members = await Status(nodes.Seed);
        var servers = members.Where(m => !m.GetProperty("self").GetBoolean()).ToList();
        Assert.Equal(nodes.Ports.Select(p => $"127.0.0.1:{p}").Order(), servers.Select(m => m.GetProperty("address").GetString()).Order());
        Assert.All(servers, member =>
        {
            Assert.Equal("Up", member.GetProperty("status").GetString());
            Assert.True(member.GetProperty("reachable").GetBoolean());
            Assert.Contains("device", member.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
            var device = Assert.Single(member.GetProperty("devices").EnumerateArray());
            Assert.Equal("cpu", device.GetProperty("device").GetString());
            Assert.StartsWith("cls #", device.GetProperty("model").GetString(), StringComparison.Ordinal);
            Assert.Equal("classify", device.GetProperty("task").GetString());
            Assert.Equal("fp32", device.GetProperty("dtype").GetString());
        });

        // The seed's operations endpoint: ready (Up, its device loaded), and the members it sees in /metrics.
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{metricsPort}"), Timeout = Timeout };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/live")).StatusCode);
        var ready = await http.GetAsync("/health/ready");
        Assert.True(ready.StatusCode == HttpStatusCode.OK, await ready.Content.ReadAsStringAsync());
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("di_cluster_members{", metrics, StringComparison.Ordinal);
        Assert.Contains("status=\"Up\"", metrics, StringComparison.Ordinal);

        // kill -9 of the third node: the next status runs show it unreachable, then removed (the split-brain resolver
        // downs it once the failure detector has judged it); the bound only ends a failing test.
        var victim = $"127.0.0.1:{nodes.Ports[2]}";
        nodes.Processes[2].Kill();
        var deadline = Task.Delay(Timeout);
        while (true)
        {
            var seen = (await Status(nodes.Seed)).FirstOrDefault(m => m.GetProperty("address").GetString() == victim);
            if (seen.ValueKind == JsonValueKind.Undefined || !seen.GetProperty("reachable").GetBoolean())
            {
                break;
            }

            Assert.False(deadline.IsCompleted, $"{victim} still reachable in di status {Timeout} after its kill -9:\n{log}");
        }
    }

    [Fact]
    public async Task Status_of_a_cluster_that_is_not_there_is_exit_2_in_one_line()
    {
        var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "status", "--join", $"127.0.0.1:{DiRunner.FreePort()}", "--join-timeout", "3");
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.StartsWith("di: error: could not join the cluster at 127.0.0.1:", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Theory]
    [InlineData("70000")]
    [InlineData("-1")]
    public async Task A_metrics_port_out_of_range_is_exit_2_before_anything_starts(string port)
    {
        var (exit, stdout, stderr) = await DiRunner.Run("node", "--model", DiRunner.TinyClassifier, "--task", "classify", "--metrics-port", port);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal($"di: error: --metrics-port {port}: a port is 0-65535 (0: any free port)", stderr.Trim());
    }

    private static async Task<IReadOnlyList<JsonElement>> Status(string seed)
    {
        var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "status", "--join", seed, "--json");
        Assert.True(exit == 0, stderr);
        return JsonDocument.Parse(stdout).RootElement.GetProperty("members").EnumerateArray().ToList();
    }
}
