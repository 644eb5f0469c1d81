using System.CommandLine;
using DistributedInference.Host.Benchmarks;

namespace DistributedInference.Host.CommandLine;

/// <summary><c>di bench replica|pipeline|transport</c>: ratios measured side by side in one run (medians; the machine is shared).</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "GPT-2 folder or built-in name", DefaultValueFactory = _ => "gpt2-tiny" };
        var rows = new Option<int>("--rows") { Description = "rows of random token ids per run", DefaultValueFactory = _ => 64 };
        var sequence = new Option<int>("--sequence") { Description = "tokens per row", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--max-batch-size") { Description = "rows per forward pass", DefaultValueFactory = _ => 8 };
        var repeats = new Option<int>("--repeats") { Description = "runs measured; the median is printed", DefaultValueFactory = _ => 5 };
        var replica = new Command("replica", "Actor overhead against a direct TorchSharp loop, and scaling on simulated devices.") { model, rows, sequence, batch, repeats };
        replica.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await ReplicaBenchmark.Run(result.GetValue(model)!, result.GetValue(rows), result.GetValue(sequence), result.GetValue(batch), result.GetValue(repeats), result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));

        var stages = new Option<int>("--stages") { Description = "simulated pipeline stages", DefaultValueFactory = _ => 4 };
        var microBatches = new Option<int>("--micro-batches") { Description = "micro-batches per call", DefaultValueFactory = _ => 16 };
        var calls = new Option<int>("--calls") { Description = "calls sent back to back for the steady-state measurement", DefaultValueFactory = _ => 8 };
        var stageMs = new Option<int>("--stage-ms") { Description = "compute time of one micro-batch on one simulated stage, in milliseconds", DefaultValueFactory = _ => 20 };
        var pipeline = new Command("pipeline", "Pipeline scheduling on simulated stages: one call and back-to-back calls.") { stages, microBatches, calls, stageMs };
        pipeline.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await PipelineBenchmark.Run(result.GetValue(stages), result.GetValue(microBatches), result.GetValue(calls), TimeSpan.FromMilliseconds(result.GetValue(stageMs)), result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));

        var genStages = new Option<int>("--stages") { Description = "simulated pipeline stages", DefaultValueFactory = _ => 4 };
        var genMicroBatches = new Option<int>("--micro-batches") { Description = "micro-batches generated side by side (one row each)", DefaultValueFactory = _ => 8 };
        var newTokens = new Option<int>("--new-tokens") { Description = "tokens generated per row", DefaultValueFactory = _ => 32 };
        var genStageMs = new Option<int>("--stage-ms") { Description = "time of one micro-batch's step on one simulated stage, in milliseconds", DefaultValueFactory = _ => 10 };
        var pipelineGenerate = new Command("pipeline-generate", "Pipelined generation on simulated stages against --num-chunks 1 (sequential model parallel).") { genStages, genMicroBatches, newTokens, genStageMs };
        pipelineGenerate.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await PipelineGenerateBenchmark.Run(result.GetValue(genStages), result.GetValue(genMicroBatches), result.GetValue(newTokens), TimeSpan.FromMilliseconds(result.GetValue(genStageMs)), result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));

        var memoryModel = new Option<string>("--model") { Description = "model folder or built-in (write one with di checkpoint random)", Required = true };
        var memoryStages = new Option<string>("--stages") { Description = "stage counts to measure, comma-separated", DefaultValueFactory = _ => "2,4" };
        var memoryDtype = new Option<string>("--dtype") { Description = "fp32 | fp16 | bf16", DefaultValueFactory = _ => "bf16" };
        var stageMemory = new Command("stage-memory", "Peak resident memory of loading each pipeline stage (VmHWM), against its weights.") { memoryModel, memoryStages, memoryDtype };
        stageMemory.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await StageMemoryBenchmark.Run(result.GetValue(memoryModel)!, StageMemoryBenchmark.ParseCounts(result.GetValue(memoryStages)!), result.GetValue(memoryDtype)!, result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));

        var sizes = new Option<string>("--sizes-mb") { Description = "tensor sizes in MB (10^6 bytes), comma-separated", DefaultValueFactory = _ => "4,16" };
        var messages = new Option<int>("--messages") { Description = "tensors sent per round", DefaultValueFactory = _ => 32 };
        var window = new Option<int>("--window") { Description = "messages in flight (credit window)", DefaultValueFactory = _ => 4 };
        var rounds = new Option<int>("--rounds") { Description = "rounds measured after one warm-up; the median is printed", DefaultValueFactory = _ => 5 };
        var transport = new Command("transport", "Tensors between two cluster nodes on 127.0.0.1 against a raw TCP socket.") { sizes, messages, window, rounds };
        transport.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var sizesMb = result.GetValue(sizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(s => int.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var mb) && mb is > 0 and <= 60 ? mb : throw new Models.InvalidInputException($"--sizes-mb: {s} is not a size from 1 to 60"))
                    .ToList();
                await TransportBenchmark.Run(sizesMb, result.GetValue(messages), result.GetValue(window), result.GetValue(rounds), result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));

        return new Command("bench", "Benchmarks that print ratios measured side by side.") { replica, pipeline, pipelineGenerate, stageMemory, transport };
    }
}
