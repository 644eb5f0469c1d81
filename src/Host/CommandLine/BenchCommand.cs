using System.CommandLine;
using DistributedInference.Host.Benchmarks;

namespace DistributedInference.Host.CommandLine;

/// <summary><c>di bench replica|pipeline</c>: ratios measured side by side in one run (medians; the machine is shared).</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "GPT-2 folder or built-in name", DefaultValueFactory = _ => "gpt2-tiny" };
        var rows = new Option<int>("--rows") { DefaultValueFactory = _ => 64 };
        var sequence = new Option<int>("--sequence") { DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--max-batch-size") { DefaultValueFactory = _ => 8 };
        var repeats = new Option<int>("--repeats") { DefaultValueFactory = _ => 5 };
        var replica = new Command("replica", "Actor overhead against a direct TorchSharp loop, and scaling on simulated devices.") { model, rows, sequence, batch, repeats };
        replica.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await ReplicaBenchmark.Run(result.GetValue(model)!, result.GetValue(rows), result.GetValue(sequence), result.GetValue(batch), result.GetValue(repeats), result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));

        var stages = new Option<int>("--stages") { DefaultValueFactory = _ => 4 };
        var microBatches = new Option<int>("--micro-batches") { DefaultValueFactory = _ => 16 };
        var calls = new Option<int>("--calls") { DefaultValueFactory = _ => 8 };
        var stageMs = new Option<int>("--stage-ms") { DefaultValueFactory = _ => 20 };
        var pipeline = new Command("pipeline", "Pipeline scheduling on simulated stages: one call and back-to-back calls.") { stages, microBatches, calls, stageMs };
        pipeline.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await PipelineBenchmark.Run(result.GetValue(stages), result.GetValue(microBatches), result.GetValue(calls), TimeSpan.FromMilliseconds(result.GetValue(stageMs)), result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));

        return new Command("bench", "Benchmarks that print ratios measured side by side.") { replica, pipeline };
    }
}
