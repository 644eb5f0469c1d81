// Run by tests/Host/CommandLine/ProcessGroupLaunchTests under `di launch --num-processes N -- dotnet ProcessGroupProgram.dll
// SPLIT_FIXTURE MARKER_FOLDER`: every process prints what it sees and what the group's operations return, one fact a
// line, and the test checks them. With a third argument `exit-3`, process 1 exits with code 3 once the group has
// formed (every process has printed its pid) while the others wait for it at a barrier. With `lost`, process 1
// exits at once and the others print what their barrier throws (exit 4).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Actors.Processes;
using static TorchSharp.torch;

static string Now() => DateTime.UtcNow.Ticks.ToString(CultureInfo.InvariantCulture);

await using var state = await ProcessState.FromEnvironmentAsync();
var rank = state.ProcessIndex;
if (args.Length > 2 && args[2] == "exit-3")
{
    Console.WriteLine($"pid {rank} {Environment.ProcessId}");
    state.WaitForEveryone();
    if (rank == 1)
    {
        return 3;
    }

    state.WaitForEveryone();
    return 0;
}

Console.WriteLine($"who {rank} {state.NumProcesses} {state.LocalProcessIndex} {state.Device} {state.IsMainProcess} {state.IsLastProcess}");
if (args.Length > 2 && args[2] == "lost")
{
    if (rank == 1)
    {
        return 3;
    }

    try
    {
        state.WaitForEveryone();
    }
    catch (ProcessGroupTimeoutException e)
    {
        Console.WriteLine($"lost {rank} [{string.Join(",", e.Missing)}] {e.Message}");
        return 4;
    }

    return 0;
}

// 1. This process's share of every list of the Accelerate fixture for this number of processes.
var cases = JsonNode.Parse(File.ReadAllText(args[0]))!["cases"]!.AsArray();
for (var i = 0; i < cases.Count; i++)
{
    var item = cases[i]!;
    if ((int)item["num_processes"]! != state.NumProcesses || item["per_process"]![0] is JsonObject)
    {
        continue;
    }

    var input = item["input"]!.AsArray().Select(n => n!.ToJsonString()).ToList();
    var share = state.SplitBetweenProcesses(input, (bool)item["apply_padding"]!);
    Console.WriteLine($"share {i} [{string.Join(",", share)}]");
}

// 2. A barrier that one process reaches late: the others must not pass it before it arrives.
if (state.IsLastProcess)
{
    Thread.Sleep(1500);
}

Console.WriteLine($"before-barrier {rank} {Now()}");
state.WaitForEveryone();
Console.WriteLine($"after-barrier {rank} {Now()}");

// 3. Gather: results of padded shares back in input order without the pads (lists and tensor rows).
var prompts = Enumerable.Range(0, 7).Select(i => $"prompt {i}").ToList();
var mine = state.SplitBetweenProcesses(prompts, applyPadding: true);
var gathered = state.Gather(mine.Select(p => p.ToUpperInvariant()).ToList(), prompts.Count, applyPadding: true);
Console.WriteLine($"gathered {JsonSerializer.Serialize(gathered)}");
using (var rows = arange(7, ScalarType.Int64))
using (var share = (Tensor)state.SplitBetweenProcesses(rows, applyPadding: true))
using (var times10 = share * 10)
using (var all = (Tensor)state.Gather(times10, 7, applyPadding: true))
{
    Console.WriteLine($"gathered-tensor {JsonSerializer.Serialize(all.data<long>().ToArray())}");
}

// 4. GatherObject: plain values and a record (JSON).
Console.WriteLine($"gather-object {JsonSerializer.Serialize(state.GatherObject(rank * rank))}");
Console.WriteLine($"gather-record {JsonSerializer.Serialize(state.GatherObject(new Part(rank, $"from {rank}")))}");

// 5. MainProcessFirst: the main process writes a marker in the block; the others find it when they enter theirs.
var marker = Path.Combine(args[1], "main-first");
using (state.MainProcessFirst())
{
    if (state.IsMainProcess)
    {
        Thread.Sleep(500);
        File.WriteAllText(marker, "main");
    }
    else
    {
        Console.WriteLine($"main-first-seen {rank} {File.Exists(marker)}");
    }
}

// 6. Print: on the main process only.
state.Print($"printed by {rank}");

// 7. A barrier the last process never reaches: the others time out naming it.
if (!state.IsLastProcess)
{
    try
    {
        state.WaitForEveryone(TimeSpan.FromSeconds(2));
        Console.WriteLine($"timeout-missed {rank}");
    }
    catch (ProcessGroupTimeoutException e)
    {
        Console.WriteLine($"timeout {rank} [{string.Join(",", e.Missing)}] {e.Message}");
    }
}

Console.WriteLine($"done {rank}");
return 0;

internal sealed record Part(int Rank, string Text);
