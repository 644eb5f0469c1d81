using System.CommandLine;
using DistributedInference.Host.Benchmarks;

namespace DistributedInference.Host.CommandLine;

/// <summary><c>di bench replica|pipeline|transport|model|text-to-image|serve</c>: ratios measured side by side in one run (medians; the machine is shared).</summary>
public static class BenchCommand
{
    private static Command ModelCommand()
    {
        var model = new Option<string>("--model") { Description = "model folder or built-in name, any family (gpt2, llama-3.2-1b, qwen3-0.6b, ...)", DefaultValueFactory = _ => "gpt2" };
        var dtype = SharedOptions.DType("precision the model runs in", Models.Runtime.Precision.Fp32);
        var batch = new Option<int>("--batch") { Description = "rows per pass", DefaultValueFactory = _ => 8 };
        var sequence = new Option<int>("--sequence") { Description = "prompt tokens per row (random ids)", DefaultValueFactory = _ => 128 };
        var newTokens = new Option<int>("--new-tokens") { Description = "tokens generated per row after the prompt (decoders; 0: forward only)", DefaultValueFactory = _ => 16 };
        var device = new Option<string>("--device") { Description = "cpu | cuda:N", DefaultValueFactory = _ => "cpu" };
        var rounds = new Option<int>("--rounds") { Description = "rounds measured after one warm-up; medians are printed", DefaultValueFactory = _ => 3 };
        var threads = new Option<int>("--threads") { Description = "libtorch intra-op threads on the CPU, both sides (0: libtorch's default, one per core)", DefaultValueFactory = _ => 0 };
        var python = new Option<string>("--python") { Description = "python for the PyTorch eager baseline: auto (DI_BENCH_PYTHON, /usr/bin/python3, python3: the first that imports torch), none, or a path", DefaultValueFactory = _ => "auto" };
        var matmul = new Option<int>("--matmul-size") { Description = "n of the n^3 matmul that measures the device's peak", DefaultValueFactory = _ => 4096 };
        var bandwidth = new Option<int>("--bandwidth-mb") { Description = "MB summed and copied to measure memory bandwidth", DefaultValueFactory = _ => 1000 };
        var seed = SharedOptions.Seed("seed of a built-in model's random weights");
        var libtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch (a PyTorch install's torch/lib, CUDA included); also ${Models.Runtime.LibTorch.FolderVariable}" };
        var command = new Command("model", "One model's forward and generation speed against the device's measured matmul peak and memory bandwidth, and against PyTorch eager when a python with torch is found.")
        {
            model, dtype, batch, sequence, newTokens, device, rounds, threads, python, matmul, bandwidth, seed, libtorch,
        };
        command.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var options = new ModelBenchOptions(
                    result.GetValue(model)!, result.GetValue(dtype), result.GetValue(batch), result.GetValue(sequence), result.GetValue(newTokens),
                    result.GetValue(device)!, result.GetValue(rounds), result.GetValue(threads), result.GetValue(python)!, result.GetValue(matmul), result.GetValue(bandwidth), result.GetValue(seed));
                await ModelBenchmark.Run(options, result.GetValue(libtorch), result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    private static Command ServeCommand()
    {
        var model = new Option<string>("--model") { Description = "in-process engine: a decoder folder or built-in name (random weights)", DefaultValueFactory = _ => "gpt2" };
        var dtype = SharedOptions.DType("precision of the in-process engine", Models.Runtime.Precision.Fp32);
        var streams = new Option<int>("--streams") { Description = "requests sent at once (then the same requests one at a time)", DefaultValueFactory = _ => 16 };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "random prompt ids per request", DefaultValueFactory = _ => 32 };
        var newTokens = new Option<int>("--new-tokens") { Description = "tokens generated per request (end of sequence ignored)", DefaultValueFactory = _ => 64 };
        var requests = new Option<string?>("--requests") { Description = "JSONL of requests instead ({\"prompt\": text or ids, \"max_tokens\": n} per line)", HelpName = "FILE" };
        var url = new Option<string?>("--url") { Description = "a running di serve (its base address) instead of an in-process engine", HelpName = "URL" };
        var apiKey = new Option<string?>("--api-key") { Description = "the server's key (also $DI_API_KEY)", HelpName = "KEY" };
        var device = new Option<string>("--device") { Description = "cpu | cuda:N (in-process engine)", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "libtorch intra-op threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var seed = SharedOptions.Seed("seed of the prompts and of a built-in model's random weights");
        var maxSeqs = new Option<int>("--max-num-seqs") { Description = "in-process engine: sequences side by side at most", DefaultValueFactory = _ => 64 };
        var kvMemory = new Option<double>("--kv-cache-memory") { Description = "in-process engine: MiB of KV cache", DefaultValueFactory = _ => 1024, HelpName = "MIB" };
        var libtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch; also ${Models.Runtime.LibTorch.FolderVariable}" };
        var command = new Command("serve", "Continuous batching under load: concurrent streams against the same requests one at a time (TTFT, inter-token latency, tokens/s); the last line is the speed-up.")
        {
            model, dtype, streams, promptTokens, newTokens, requests, url, apiKey, device, threads, seed, maxSeqs, kvMemory, libtorch,
        };
        command.SetAction((result, cancellation) => UserErrors.Run(
            async () =>
            {
                var options = new ServeBenchOptions(
                    result.GetValue(model)!, result.GetValue(dtype), result.GetValue(streams), result.GetValue(promptTokens), result.GetValue(newTokens),
                    result.GetValue(requests), result.GetValue(url), result.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("DI_API_KEY"),
                    result.GetValue(device)!, result.GetValue(threads), result.GetValue(seed), result.GetValue(maxSeqs), result.GetValue(kvMemory));
                await ServeBenchmark.Run(options, result.GetValue(libtorch), result.InvocationConfiguration.Output, cancellation);
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    private static Command TextToImageCommand()
    {
        var model = new Option<string>("--model") { Description = "Stable Diffusion folder or built-in (sd-1.5, sd-2.1-base, sd-tiny)", DefaultValueFactory = _ => "sd-1.5" };
        var size = new Option<int>("--size") { Description = "image height and width in pixels", DefaultValueFactory = _ => 512 };
        var batches = new Option<string>("--batches") { Description = "comma-separated prompts per step (each runs the UNet on twice as many rows: guidance)", DefaultValueFactory = _ => "1,4" };
        var dtypes = new Option<string>("--dtypes") { Description = "comma-separated: fp32, bf16, fp16", DefaultValueFactory = _ => "fp32,bf16" };
        var steps = new Option<int>("--steps") { Description = "denoising steps measured after one warm-up (the median is printed)", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "intra-op threads, both sides (0: one per core)", DefaultValueFactory = _ => 0 };
        var python = new Option<string>("--python") { Description = "python for the PyTorch eager baseline: auto, none, or a path", DefaultValueFactory = _ => "auto" };
        var device = new Option<string>("--device") { Description = "cpu | cuda:N, both sides", DefaultValueFactory = _ => "cpu" };
        var libtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch (a PyTorch install's torch/lib, CUDA included); also ${Models.Runtime.LibTorch.FolderVariable}" };
        var command = new Command("text-to-image", "Seconds per denoising step of a Stable Diffusion pipeline, TorchSharp next to PyTorch eager of the same UNet shapes.")
        {
            model, size, batches, dtypes, steps, threads, python, device, libtorch,
        };
        command.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var batchList = result.GetValue(batches)!.Split(',').Select(b => int.Parse(b, System.Globalization.CultureInfo.InvariantCulture)).ToList();
                await TextToImageBenchmark.Run(result.GetValue(model)!, result.GetValue(size), batchList, result.GetValue(dtypes)!.Split(','), result.GetValue(steps), result.GetValue(threads), result.GetValue(python)!, result.GetValue(device)!, result.GetValue(libtorch), result.InvocationConfiguration.Output);
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model folder or built-in name (its logits task is run)", DefaultValueFactory = _ => "gpt2-tiny" };
        var rows = new Option<int>("--rows") { Description = "rows of random token ids per run", DefaultValueFactory = _ => 64 };
        var sequence = new Option<int>("--sequence") { Description = "tokens per row", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--max-batch-size") { Description = "rows per forward pass", DefaultValueFactory = _ => 8 };
        var repeats = new Option<int>("--repeats") { Description = "rounds measured after one warm-up, each timing the direct loop then the actors; the median is printed", DefaultValueFactory = _ => 5 };
        var replicaDevice = new Option<string>("--device") { Description = "cpu | cuda:N, for both the direct loop and the device actor", DefaultValueFactory = _ => "cpu" };
        var replicaDtype = SharedOptions.DType("precision the model runs in", Models.Runtime.Precision.Fp32);
        var replicaLibtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch (a PyTorch install's torch/lib, CUDA included); also ${Models.Runtime.LibTorch.FolderVariable}" };
        var replica = new Command("replica", "Actor overhead against a direct loop over the same replica model, and scaling on simulated devices.") { model, rows, sequence, batch, repeats, replicaDevice, replicaDtype, replicaLibtorch };
        replica.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await ReplicaBenchmark.Run(result.GetValue(model)!, result.GetValue(replicaDevice)!, result.GetValue(replicaDtype), result.GetValue(replicaLibtorch), result.GetValue(rows), result.GetValue(sequence), result.GetValue(batch), result.GetValue(repeats), result.InvocationConfiguration.Output);
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
        var memoryDtype = SharedOptions.DType("precision the stages load in", Models.Runtime.Precision.Bf16);
        var stageMemory = new Command("stage-memory", "Peak resident memory of loading each pipeline stage (VmHWM), against its weights.") { memoryModel, memoryStages, memoryDtype };
        stageMemory.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await StageMemoryBenchmark.Run(result.GetValue(memoryModel)!, StageMemoryBenchmark.ParseCounts(result.GetValue(memoryStages)!), result.GetValue(memoryDtype), result.InvocationConfiguration.Output);
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

        return new Command("bench", "Benchmarks that print ratios measured side by side.") { replica, pipeline, pipelineGenerate, stageMemory, transport, ModelCommand(), TextToImageCommand(), ServeCommand() };
    }
}
