using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.Json.Nodes;
using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// <c>di bench text-to-image</c>: seconds per denoising step of a Stable Diffusion pipeline (the UNet on
/// <c>cat([latents] * 2)</c> with the text embeddings, guidance, the scheduler's step), through TorchSharp and, back to
/// back in the same run, through PyTorch eager (<c>bench/torch_unet_bench.py</c>, a plain PyTorch UNet of the same
/// shapes) for each dtype and batch. Each side measures one warm-up step, then <c>steps</c> steps; the median is printed.
/// </summary>
public static class TextToImageBenchmark
{
    private const string ScriptResource = "DistributedInference.Host.Benchmarks.torch_unet_bench.py";

    public static async Task Run(string model, int size, IReadOnlyList<int> batches, IReadOnlyList<string> dtypes, int steps, int threads, string pythonChoice, string deviceName, string? libtorch, TextWriter stdout)
    {
        LibTorch.Initialize(libtorch);
        var deviceId = DeviceName.Parse(deviceName);
        var device = deviceId.ToTorch();
        if (threads > 0)
        {
            set_num_threads(threads);
        }

        var python = PyTorchBaseline.FindPython(pythonChoice, out var why);
        var source = StableDiffusionSource.Resolve(model);
        var latentSize = size / source.VaeScaleFactor;
        await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"# {model} on {deviceId}: {size}x{size} (latents {latentSize}x{latentSize}), {steps} step(s) after one warm-up, TorchSharp threads {get_num_threads()}, {Environment.ProcessorCount} cores, load average {LoadAverage()}"));
        await stdout.WriteLineAsync("| dtype | batch | TorchSharp s/step | PyTorch eager s/step | PyTorch / TorchSharp |");
        await stdout.WriteLineAsync("|---|---|---|---|---|");
        foreach (var dtypeName in dtypes)
        {
            var dtype = Precisions.Parse(dtypeName).ToScalarType();
            using var pipeline = source.CreatePipeline(device, dtype);
            foreach (var batch in batches)
            {
                var ours = Median(TorchSharpSteps(pipeline, device, batch, latentSize, steps));
                var (theirs, note) = python is null ? (double.NaN, why) : PyTorchSteps(python, source, dtypeName, deviceId.ToString(), batch, latentSize, steps, threads);
                await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"| {dtypeName} | {batch} | {ours:F2} | {(double.IsNaN(theirs) ? note : theirs.ToString("F2", CultureInfo.InvariantCulture))} | {(double.IsNaN(theirs) ? "-" : (theirs / ours).ToString("F2", CultureInfo.InvariantCulture))} |"));
                await stdout.FlushAsync();
            }
        }
    }

    // The pipeline's denoising loop (StableDiffusionPipeline.Generate without the decode), each step timed.
    private static List<double> TorchSharpSteps(StableDiffusionPipeline pipeline, Device device, int batch, int latentSize, int steps)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var prompts = Enumerable.Range(0, batch).Select(i => $"a photo of a cat number {i}").ToList();
        var embeddings = cat([pipeline.EncodePrompt(pipeline.Source.Tokenizer.Tokenize(prompts.Select(_ => string.Empty).ToList())), pipeline.EncodePrompt(pipeline.Source.Tokenizer.Tokenize(prompts))], 0);
        using var scheduler = DiffusionScheduler.Create(pipeline.Source.DefaultScheduler, steps + 1);
        var latents = (StableDiffusionPipeline.DrawLatents(Enumerable.Range(0, batch).Select(i => (long)i).ToList(), 0, 4, latentSize, latentSize).to(pipeline.Dtype).to(device) * scheduler.InitNoiseSigma).MoveToOuterDisposeScope();
        var times = new List<double>();
        for (var i = 0; i < scheduler.Timesteps.Count; i++)
        {
            var clock = Stopwatch.StartNew();
            using (var step = NewDisposeScope())
            {
                var input = scheduler.ScaleModelInput(cat([latents, latents], 0), i);
                using var timestep = tensor(scheduler.Timesteps[i], ScalarType.Float64, device);
                var halves = pipeline.Unet.Forward(input, timestep, embeddings).chunk(2, 0);
                var noise = halves[0] + (7.5 * (halves[1] - halves[0]));
                var next = scheduler.Step(noise, i, latents).MoveToOuterDisposeScope();
                latents.Dispose();
                latents = next;
                HardwareProbe.Synchronize(device);
            }

            times.Add(clock.Elapsed.TotalSeconds);
        }

        latents.Dispose();
        return times.Skip(1).ToList();
    }

    private static (double Seconds, string Note) PyTorchSteps(string python, StableDiffusionSource source, string dtype, string device, int batch, int latentSize, int steps, int threads)
    {
        var script = Path.Combine(Path.GetTempPath(), $"di-torch-unet-{Environment.ProcessId}.py");
        using (var resource = Assembly.GetExecutingAssembly().GetManifestResourceStream(ScriptResource)
            ?? throw new InvalidOperationException($"resource {ScriptResource} missing from di"))
        using (var file = File.Create(script))
        {
            resource.CopyTo(file);
        }

        try
        {
            var start = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add(script);
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"{python} did not start");
            var spec = new JsonObject
            {
                ["dtype"] = dtype,
                ["batch"] = batch,
                ["latent_size"] = latentSize,
                ["steps"] = steps,
                ["threads"] = threads > 0 ? threads : Environment.ProcessorCount,
                ["heads"] = new JsonArray([.. source.Unet.AttentionHeads.Select(h => (JsonNode)h)]),
                ["context"] = source.Unet.CrossAttentionDim[0],
                ["linear"] = source.Unet.UseLinearProjection,
                ["channels"] = new JsonArray([.. source.Unet.BlockOutChannels.Select(c => (JsonNode)c)]),
                ["layers"] = source.Unet.LayersPerBlock[0],
                ["groups"] = source.Unet.NormNumGroups,
            };
            process.StandardInput.WriteLine(spec.ToJsonString());
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            var line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
            if (process.ExitCode != 0 || line is null)
            {
                return (double.NaN, $"PyTorch failed: {error.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()}");
            }

            var result = (JsonObject)JsonNode.Parse(line)!;
            return (Median(((JsonArray)result["seconds_per_step"]!).Select(n => n!.GetValue<double>()).ToList()), string.Empty);
        }
        finally
        {
            File.Delete(script);
        }
    }

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
