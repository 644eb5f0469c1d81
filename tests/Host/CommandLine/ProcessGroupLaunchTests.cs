using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// <c>di launch --num-processes N -- dotnet ProcessGroupProgram.dll</c> (tests/Programs): every process gets a
/// <c>ProcessState.FromEnvironment()</c> of one group (an Akka cluster met at MASTER_ADDR:MASTER_PORT), splits like
/// Accelerate, gathers in input order, and waits at barriers for the others. One launch per N runs every check.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed partial class ProcessGroupLaunchTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-group-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Fixture => Path.Combine(AppContext.BaseDirectory, "fixtures", "accelerate-split-lists.json");

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task Launched_processes_form_one_group_that_splits_gathers_and_waits_like_accelerate(int n)
    {
        var (exit, stdout, stderr) = await DiRunner.Run(
            "launch", "--num-processes", n.ToString(CultureInfo.InvariantCulture), "--",
            "dotnet", DiRunner.ProgramDll("tests/Programs/ProcessGroupProgram"), Fixture, _folder);
        Assert.True(exit == 0, stderr);
        AssertTheGroupRan(n, stdout, rank => rank);
    }

    [Fact]
    public async Task Two_machines_each_launching_two_processes_form_one_group_of_four()
    {
        // Two launchers on 127.0.0.1 standing for two machines: machine 1 starts processes 2 and 3 (local 0 and 1).
        var port = DiRunner.FreePort().ToString(CultureInfo.InvariantCulture);
        string[] Args(int machine) =>
        [
            "launch", "--num-processes", "4", "--num-machines", "2", "--machine-rank", machine.ToString(CultureInfo.InvariantCulture),
            "--main-process-ip", "127.0.0.1", "--main-process-port", port, "--",
            "dotnet", DiRunner.ProgramDll("tests/Programs/ProcessGroupProgram"), Fixture, _folder,
        ];
        var machines = await Task.WhenAll(DiRunner.Run(Args(0)), DiRunner.Run(Args(1)));
        Assert.All(machines, m => Assert.True(m.ExitCode == 0, m.Stderr));
        Assert.DoesNotMatch(@"\[rank [23]\]", machines[0].Stdout);
        Assert.DoesNotMatch(@"\[rank [01]\]", machines[1].Stdout);
        AssertTheGroupRan(4, machines[0].Stdout + machines[1].Stdout, rank => rank % 2);
    }

    [Fact]
    public async Task A_process_that_dies_on_another_machine_fails_the_barrier_of_the_others_well_before_its_timeout()
    {
        // Machine 1's only process exits 3 before the barrier: its launcher ends, and nothing stops process 0 on machine
        // 0, whose barrier (30 min timeout) must fail as soon as process 1 has left the cluster without arriving.
        var port = DiRunner.FreePort().ToString(CultureInfo.InvariantCulture);
        string[] Args(int machine) =>
        [
            "launch", "--num-processes", "2", "--num-machines", "2", "--machine-rank", machine.ToString(CultureInfo.InvariantCulture),
            "--main-process-port", port, "--", "dotnet", DiRunner.ProgramDll("tests/Programs/ProcessGroupProgram"), Fixture, _folder, "lost",
        ];
        var machines = await Task.WhenAll(DiRunner.Run(Args(0)), DiRunner.Run(Args(1))).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(3, machines[1].ExitCode);
        Assert.True(machines[0].ExitCode == 4, machines[0].Stderr);
        Assert.Matches(@"\[rank 0\] lost 0 \[1\] process 0 waited [0-9.]+ s for the others: process\(es\) 1 did not arrive \(gone from the group", machines[0].Stdout);
    }

    [Theory]
    [InlineData("--machine-rank 2", "--machine-rank 2: must be in 0..1 (--num-machines 2)")]
    [InlineData("--num-processes 3 --main-process-port 29500", "--num-processes 3 is the total over all machines: it must be a multiple of --num-machines 2")]
    [InlineData("", "--num-machines > 1: give every machine the same --main-process-port")]
    [InlineData("--main-process-port 99999", "--main-process-port 99999: not a port (1-65535)")]
    [InlineData("--devices cpu,cpu:1 --main-process-port 29500", "--devices: unknown device 'cpu:1': use cpu or cuda:N")]
    public async Task Bad_launch_options_are_one_line_errors(string options, string error)
    {
        var args = new List<string> { "launch", "--num-machines", "2" };
        args.AddRange(options.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        args.AddRange(["--", "true"]);
        var (exit, _, stderr) = await DiRunner.Run([.. args]);
        Assert.Equal(2, exit);
        Assert.Contains(error, stderr, StringComparison.Ordinal);
    }

    // Checks every line ProcessGroupProgram printed in a group of n processes; localIndex: each process's LOCAL_RANK.
    private static void AssertTheGroupRan(int n, string stdout, Func<int, int> localIndex)
    {
        var lines = Line().Matches(stdout).Select(m => (Rank: int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), Text: m.Groups[2].Value.TrimEnd('\r'))).ToList();
        IEnumerable<string> Of(int rank, string kind) => lines.Where(l => l.Rank == rank && l.Text.StartsWith(kind + " ", StringComparison.Ordinal)).Select(l => l.Text[(kind.Length + 1)..]);

        for (var rank = 0; rank < n; rank++)
        {
            Assert.Equal($"{rank} {n} {localIndex(rank)} cpu {rank == 0} {rank == n - 1}", Assert.Single(Of(rank, "who")));
        }

        // Each process's share is Accelerate's, for every list case of the fixture with N processes (cases where
        // Accelerate raises are left out of the program).
        var cases = JsonNode.Parse(File.ReadAllText(Fixture))!["cases"]!.AsArray();
        var checkedCases = 0;
        for (var i = 0; i < cases.Count; i++)
        {
            var item = cases[i]!;
            if ((int)item["num_processes"]! != n || item["per_process"]![0] is JsonObject)
            {
                continue;
            }

            for (var rank = 0; rank < n; rank++)
            {
                var expected = "[" + string.Join(",", item["per_process"]![rank]!.AsArray().Select(v => v!.ToJsonString())) + "]";
                Assert.Contains($"{i} {expected}", Of(rank, "share"));
            }

            checkedCases++;
        }

        Assert.True(checkedCases >= 10, $"only {checkedCases} fixture cases for {n} processes");

        // No process passes the barrier before every process has reached it (the last one sleeps before it, so the others
        // wait; on a loaded machine another may still be the last to arrive, which the rule covers as well).
        var arrivals = Enumerable.Range(0, n).Select(rank => long.Parse(Assert.Single(Of(rank, "before-barrier")).Split(' ')[1], CultureInfo.InvariantCulture)).ToList();
        var lastArrival = arrivals.Max();
        for (var rank = 0; rank < n; rank++)
        {
            Assert.True(long.Parse(Assert.Single(Of(rank, "after-barrier")).Split(' ')[1], CultureInfo.InvariantCulture) >= lastArrival, $"rank {rank} passed the barrier before rank {arrivals.IndexOf(lastArrival)} reached it");
        }

        // Gather: input order, pads dropped, on every process; tensors too; GatherObject in process order.
        var prompts = Enumerable.Range(0, 7).Select(i => $"PROMPT {i}").ToList();
        for (var rank = 0; rank < n; rank++)
        {
            Assert.Equal(prompts, JsonSerializer.Deserialize<List<string>>(Assert.Single(Of(rank, "gathered"))));
            Assert.Equal(Enumerable.Range(0, 7).Select(i => i * 10L), JsonSerializer.Deserialize<List<long>>(Assert.Single(Of(rank, "gathered-tensor")))!);
            Assert.Equal(Enumerable.Range(0, n).Select(r => r * r), JsonSerializer.Deserialize<List<int>>(Assert.Single(Of(rank, "gather-object")))!);
            Assert.Equal(
                Enumerable.Range(0, n).Select(r => $"{{\"Rank\":{r},\"Text\":\"from {r}\"}}"),
                JsonNode.Parse(Assert.Single(Of(rank, "gather-record")))!.AsArray().Select(p => p!.ToJsonString()));
        }

        // MainProcessFirst: the others enter their block after the main process has left its own.
        for (var rank = 1; rank < n; rank++)
        {
            Assert.Equal($"{rank} True", Assert.Single(Of(rank, "main-first-seen")));
        }

        // Print: the main process only.
        Assert.Equal(["printed by 0"], lines.Where(l => l.Text.StartsWith("printed by", StringComparison.Ordinal)).Select(l => l.Text));

        // A barrier the last process never reaches: the others' timeout names it.
        for (var rank = 0; rank < n - 1; rank++)
        {
            Assert.Matches($@"^{rank} \[{n - 1}\] process {rank} waited [0-9.]+ s for the others: process\(es\) {n - 1} did not arrive", Assert.Single(Of(rank, "timeout")));
        }

        Assert.All(Enumerable.Range(0, n), rank => Assert.Single(Of(rank, "done")));
    }

    [Fact]
    public async Task A_process_that_exits_3_while_the_others_wait_for_it_ends_the_launch_with_3_and_stops_them()
    {
        var (exit, stdout, stderr) = await DiRunner.Run(
            "launch", "--num-processes", "3", "--",
            "dotnet", DiRunner.ProgramDll("tests/Programs/ProcessGroupProgram"), Fixture, _folder, "exit-3").WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(exit == 3, $"exit {exit}: {stderr}");
        Assert.Contains("di launch: rank 1 exited with code 3; stopping the others", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("killed", stderr, StringComparison.Ordinal); // the others stopped on SIGTERM, within its grace
        var pids = Line().Matches(stdout).Select(m => m.Groups[2].Value.TrimEnd('\r')).Where(t => t.StartsWith("pid ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, pids.Count);
        foreach (var pid in pids.Select(p => int.Parse(p.Split(' ')[2], CultureInfo.InvariantCulture)))
        {
            Assert.False(Directory.Exists($"/proc/{pid}"), $"process {pid} still runs");
        }
    }

    [GeneratedRegex(@"^\[rank (\d+)\] (.*)$", RegexOptions.Multiline)]
    private static partial Regex Line();
}
