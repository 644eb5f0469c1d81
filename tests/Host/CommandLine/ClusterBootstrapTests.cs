using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// <c>di node --discovery config</c> on 127.0.0.1: three nodes started at once, none told whom to join, form one cluster
/// through Cluster Bootstrap (each other's contact points, the lowest starts it); a fourth started later joins that
/// cluster; a node whose peers never come says so in one line; settings that cannot work are exit 2 before anything
/// starts.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ClusterBootstrapTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Three_nodes_with_config_discovery_form_one_cluster_and_a_fourth_joins_it()
    {
        var management = Enumerable.Range(0, 4).Select(_ => DiRunner.FreePort()).ToArray();
        IEnumerable<string> ContactPoints(int count) => management.Take(count).SelectMany(p => new[] { "--contact-point", $"127.0.0.1:{p}" });
        var nodes = new List<(Process Process, IDisposable Reaper)>();
        try
        {
            Task<string> Start(int i, int known)
            {
                var process = DiRunner.StartProcess(
                    ["node", "--roles", "control", "--discovery", "config", .. ContactPoints(known), "--management-port", management[i].ToString(CultureInfo.InvariantCulture)]);
                nodes.Add((process, DiRunner.KillOnDispose(process)));
                return UpAt(process, process.StandardError.ReadToEndAsync());
            }

            var first = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Start(i, known: 3)));
            var members = await Members(first[2]);
            Assert.Equal(first.Order(), members.Where(m => !m.Self).Select(m => m.Address).Order());
            // The nodes are Up; the status client itself may still be Joining in its own view when it lists.
            Assert.All(members.Where(m => !m.Self), m => Assert.Equal("Up", m.Status));

            // The fourth lists every contact point (its own too): the others answer with the cluster they are in.
            var fourth = await Start(3, known: 4);
            members = await Members(first[0]);
            Assert.Equal(first.Append(fourth).Order(), members.Where(m => !m.Self).Select(m => m.Address).Order());
        }
        finally
        {
            nodes.ForEach(n => n.Reaper.Dispose());
        }
    }

    [Fact]
    public async Task A_node_whose_contact_points_never_answer_says_so_in_one_line()
    {
        var own = DiRunner.FreePort();
        var (exit, stdout, stderr) = await DiRunner.RunProcess(
            Timeout, "node", "--roles", "control", "--discovery", "config", "--contact-point", $"127.0.0.1:{own}", "--contact-point", $"127.0.0.1:{DiRunner.FreePort()}",
            "--management-port", own.ToString(CultureInfo.InvariantCulture), "--join-timeout", "8");
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.StartsWith("di: error: could not find or form a cluster by config discovery within 8 s: at least 2 of the contact points 127.0.0.1:", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Theory]
    [InlineData("--discovery config", "di: error: --discovery config: give every node's management endpoint with --contact-point HOST:PORT (repeat it, this node's included)")]
    [InlineData("--discovery dns", "di: error: --discovery dns: use config (a list of --contact-point) or kubernetes (pods found through the Kubernetes API)")]
    [InlineData("--discovery config --contact-point 127.0.0.1:8558 --join 127.0.0.1:4053", "di: error: --join and --discovery config: a node either joins given nodes or finds them by discovery; give one")]
    [InlineData("--discovery config --contact-point 127.0.0.1", "di: error: --contact-point 127.0.0.1: use host:port")]
    [InlineData("--discovery config --contact-point 127.0.0.1:8558 --required-contact-points 2", "di: error: --required-contact-points 2: between 1 and 1 (a majority of the --contact-point list, so that no two groups can each form a cluster)")]
    [InlineData("--discovery kubernetes --contact-point 127.0.0.1:8558", "di: error: --contact-point: Kubernetes discovery finds the pods itself; --contact-point goes with --discovery config")]
    [InlineData("--discovery kubernetes --service-name a/b", "di: error: --service-name 'a/b': use letters, digits, '-', '.' or '_' (a Kubernetes label value)")]
    [InlineData("--contact-point 127.0.0.1:8558", "di: error: --contact-point: goes with --discovery config|kubernetes")]
    [InlineData("--discovery config --contact-point 127.0.0.1:8558 --contact-point 127.0.0.1:8558", "di: error: --contact-point 127.0.0.1:8558: given twice (list each node's management endpoint once)")]
    [InlineData("--discovery config --contact-point 127.0.0.1:8558 --contact-point 127.0.0.1:8559 --contact-point 127.0.0.1:8560 --required-contact-points 1", "di: error: --required-contact-points 1: between 2 and 3 (a majority of the --contact-point list, so that no two groups can each form a cluster)")]
    [InlineData("--discovery config --contact-point localhost:8558", "di: error: --contact-point: the list must hold this node's own, 127.0.0.1:8558, spelled as --host is (each node's contact point as that node's --host)")]
    [InlineData("--discovery config --contact-point 127.0.0.1:4053 --management-port 4053 --port 4053", "di: error: --management-port 4053: the same as --port; the contact point needs a port of its own")]
    [InlineData("--discovery config --contact-point 0.0.0.0:8558 --host 0.0.0.0", "di: error: --host 0.0.0.0 with --discovery: give the address the other nodes reach this one at (its contact point and Akka address are spelled so)")]
    public async Task Discovery_settings_that_cannot_work_are_exit_2_in_one_line(string arguments, string error)
    {
        var (exit, stdout, stderr) = await DiRunner.Run(["node", "--roles", "control", .. arguments.Split(' ')]);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal(error, stderr.Trim());
    }

    // "di node: up at HOST:PORT (data plane ...)": the node's Akka address; the rest of stdout is drained.
    private static async Task<string> UpAt(Process process, Task<string> stderr)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("di node: up at ", StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                return line["di node: up at ".Length..].Split(' ')[0];
            }
        }

        throw new InvalidOperationException($"the node exited without coming up: {await stderr.WaitAsync(timeout.Token)}");
    }

    private static async Task<IReadOnlyList<(string Address, string Status, bool Self)>> Members(string node)
    {
        var (exit, stdout, stderr) = await DiRunner.RunProcess(Timeout, "status", "--join", node, "--json");
        Assert.True(exit == 0, stderr);
        return JsonDocument.Parse(stdout).RootElement.GetProperty("members").EnumerateArray()
            .Select(m => (m.GetProperty("address").GetString()!, m.GetProperty("status").GetString()!, m.GetProperty("self").GetBoolean()))
            .ToList();
    }
}
