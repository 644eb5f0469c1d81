using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Kernels;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Host.Benchmarks;

/// <summary>What <c>di bench model</c> measures.</summary>
/// <param name="Model">A model folder or built-in name (any family).</param>
/// <param name="DType">fp32, fp16 or bf16.</param>
/// <param name="Batch">Rows per pass.</param>
/// <param name="Sequence">Prompt tokens per row.</param>
/// <param name="NewTokens">Tokens generated per row (decoders); 0 skips generation.</param>
/// <param name="Device">cpu or cuda:N.</param>
/// <param name="Rounds">Rounds measured after a warm-up; medians are printed.</param>
/// <param name="Threads">libtorch intra-op threads on the CPU (both sides); 0 = libtorch's default.</param>
/// <param name="Python">auto, none, or the python to run the PyTorch baseline with.</param>
/// <param name="MatmulSize">n of the n^3 matmul that measures the peak.</param>
/// <param name="BandwidthMb">MB (10^6 bytes) summed and copied to measure memory bandwidth.</param>
/// <param name="Seed">Seed of a built-in's random weights.</param>
public sealed record ModelBenchOptions(
    string Model, Precision DType, int Batch, int Sequence, int NewTokens, string Device, int Rounds, int Threads, string Python, int MatmulSize, int BandwidthMb, long Seed);

/// <summary>
/// <c>di bench model</c>: one model's speed against the hardware and against PyTorch eager, in the same run. Each round
/// measures, back to back: the device (an n^3 matmul in the run's dtype, a large sum and copy), TorchSharp's forward
/// pass over [batch, sequence] random ids, TorchSharp's generation through <see cref="GenerationLoop"/> (prefill, then
/// each decode step timed), and the same three on the PyTorch side when a python with torch is found. Each round is
/// printed as it ends (a bench stopped by a timeout keeps what it measured). Figures are medians over the rounds, except
/// the matmul peak: the best of every matmul timed (<see cref="MatmulTrialsPerRound"/> a round), since load only ever
/// makes a measurement fall short of the peak. Ratios are taken within a round, then their median is printed. The last
/// line is the headline ratio.
/// </summary>
public static class ModelBenchmark
{
    /// <summary>Matmuls timed per round; the fastest of all of them is the peak.</summary>
    public const int MatmulTrialsPerRound = 3;

    public static async Task Run(ModelBenchOptions options, string? libtorch, TextWriter output)
    {
        Check(options);
        LibTorch.Initialize(libtorch);
        var device = DeviceName.Parse(options.Device);
        var torchDevice = device.ToTorch();
        var dtype = options.DType.ToScalarType();
        if (!device.IsCuda && options.Threads > 0)
        {
            set_num_threads(options.Threads);
        }

        var threads = get_num_threads();
        var source = AutoModelSource.Resolve(options.Model, options.Seed);
        using var model = BenchModel.Create(source, torchDevice, dtype);
        var (batch, sequence) = ((long)options.Batch, (long)options.Sequence);
        var generate = model.Decoder is not null && options.NewTokens > 0;
        using var ids = randint(0, source.VocabSize, [batch, sequence], ScalarType.Int64, torchDevice);
        if (model.Decoder is not null)
        {
            model.Decoder.CheckInput(ids, generate ? options.NewTokens : 0);
        }

        var python = PyTorchBaseline.FindPython(options.Python, out var noPython);
        PyTorchBaseline? baseline = null;
        if (python is not null && model.PyTorchSpec is { } spec)
        {
            spec["dtype"] = options.DType.Name();
            spec["device"] = device.ToString();
            spec["threads"] = device.IsCuda ? 0 : threads;
            spec["batch"] = batch;
            spec["sequence"] = sequence;
            spec["new_tokens"] = Math.Max(options.NewTokens, 2);
            spec["matmul_size"] = options.MatmulSize;
            spec["bandwidth_bytes"] = options.BandwidthMb * 1_000_000L;
            spec["seed"] = options.Seed;
            baseline = PyTorchBaseline.Start(python, spec);
        }
        else if (python is not null)
        {
            noPython = $"the PyTorch script has no {model.Family} model";
        }

        using var baselineLifetime = baseline;
        var name = options.DType.Name();
        await output.WriteLineAsync(Invariant($"model bench: {source.Name} ({model.Family}, {model.Parameters / 1e6:F1} M parameters, {model.MatmulWeights / 1e6:F1} M of them in matmuls, {(source.RandomSeed is { } seed ? $"random weights, seed {seed}" : "checkpoint weights")}), {name} on {device}{(device.IsCuda ? string.Empty : $", {threads} intra-op threads on {Environment.ProcessorCount} cores")}"));
        await output.WriteLineAsync($"  TorchSharp side: libtorch via TorchSharp, BLAS {HardwareProbe.Blas()}");
        if (baseline is null)
        {
            await output.WriteLineAsync($"  PyTorch side: not run ({noPython})");
        }
        else
        {
            var ready = baseline.Ready;
            var blas = ready["blas"]!.AsObject();
            await output.WriteLineAsync(Invariant($"  PyTorch side: {python}, torch {ready["torch"]}, BLAS {blas["kind"]} ({blas["build"]}; {string.Join(", ", blas["libraries"]!.AsArray().Select(l => Path.GetFileName((string)l!)))}), {ready["threads"]} threads, {((bool)ready["sdpa"]! ? "fused scaled_dot_product_attention" : "textbook attention (no SDPA in this torch)")}; same shapes, random weights, eager, written for this bench"));
        }

        // Warm-up: every path once on small shapes (allocator, kernels, thread pools).
        using (var warmIds = ids.narrow(1, 0, Math.Min(sequence, 8)).contiguous())
        {
            using var logits = model.Forward(warmIds);
            if (generate)
            {
                Generate(model.Decoder!, warmIds, 2, torchDevice);
                using (SkinnyLinear.Bypass())
                {
                    Generate(model.Decoder!, warmIds, 2, torchDevice);
                }

                using (SkinnyLinear.Narrow())
                {
                    Generate(model.Decoder!, warmIds, 2, torchDevice);
                }
            }
        }

        // Whether a decode step's matmuls go through SkinnyLinear (fp32 rows on the CPU): then each round also times the
        // step through libtorch's linear, and the step's matmuls alone, both ways.
        bool skinny;
        using (var probe = zeros([options.Batch, 8], dtype, torchDevice))
        using (var weight = zeros([8, 8], dtype, torchDevice))
        {
            skinny = generate && model.DecodeMatmuls.Count > 0 && SkinnyLinear.Applies(probe, weight, null);
        }

        if (generate && !skinny)
        {
            await output.WriteLineAsync(Invariant($"  decode matmuls: through libtorch's linear (SkinnyLinear takes fp32 rows on the CPU, at most {SkinnyLinear.MaxRows}, with AVX2 and FMA): no breakdown"));
        }

        baseline?.Ask("warmup");
        var rounds = new List<Round>();
        for (var r = 0; r < options.Rounds; r++)
        {
            var round = new Round { Hardware = HardwareProbe.Measure(torchDevice, dtype, options.MatmulSize, options.BandwidthMb * 1_000_000L, MatmulTrialsPerRound) };
            var clock = Stopwatch.StartNew();
            HardwareProbe.Synchronize(torchDevice);
            using (model.Forward(ids))
            {
                HardwareProbe.Synchronize(torchDevice);
                round.Forward = clock.Elapsed.TotalSeconds;
            }

            if (generate)
            {
                (round.Prefill, round.Decode, round.DecodeSteps) = Generate(model.Decoder!, ids, options.NewTokens, torchDevice);
                if (skinny)
                {
                    // The other two ways of the step, in alternate order from round to round.
                    foreach (var way in r % 2 == 0 ? new[] { "libtorch", "narrow" } : ["narrow", "libtorch"])
                    {
                        if (way == "libtorch")
                        {
                            using (SkinnyLinear.Bypass())
                            {
                                round.LibTorchDecode = Generate(model.Decoder!, ids, options.NewTokens, torchDevice).Decode;
                            }
                        }
                        else if (SkinnyLinear.Lanes == 16)
                        {
                            using (SkinnyLinear.Narrow())
                            {
                                round.NarrowDecode = Generate(model.Decoder!, ids, options.NewTokens, torchDevice).Decode;
                            }
                        }
                    }

                    // Each way first in every other round: neither always finds the caches and the pools as the other left them.
                    round.Matmuls = TimeDecodeMatmuls(model, options.Batch, dtype, torchDevice, libTorchFirst: r % 2 == 1);
                }
            }

            if (baseline is not null)
            {
                var hw = baseline.Ask("hw");
                round.PyTorchMatmul = (double)hw["matmul_flops_per_s"]!;
                round.PyTorchForward = (double)baseline.Ask("forward")["forward_s"]!;
                if (generate)
                {
                    var g = baseline.Ask("generate");
                    round.PyTorchPrefill = (double)g["prefill_s"]!;
                    round.PyTorchDecode = (double)g["decode_s"]! / Math.Max((int)g["decode_steps"]!, 1);
                }
            }

            rounds.Add(round);
            await output.WriteLineAsync(RoundLine(model, rounds, options, generate, baseline is not null));
            await output.FlushAsync();
        }

        await Report(output, model, rounds, options, name, device, generate, baseline is not null);
    }

    private static void Check(ModelBenchOptions o)
    {
        if (o.Batch < 1 || o.Sequence < 1 || o.Rounds < 1 || o.NewTokens < 0 || o.MatmulSize < 16 || o.BandwidthMb < 1 || o.Threads < 0)
        {
            throw new InvalidInputException("--batch, --sequence, --rounds must be >= 1, --new-tokens and --threads >= 0, --matmul-size >= 16, --bandwidth-mb >= 1");
        }
    }

    // Seconds per kind of matmul in one decode step of `rows` rows, summed over its layers, timed in the step's order (so
    // each weight comes from memory, as in the step): SkinnyLinear, then libtorch's linear on the same weights.
    private static Dictionary<string, (double Skinny, double LibTorch)> TimeDecodeMatmuls(BenchModel model, int rows, ScalarType dtype, Device device, bool libTorchFirst)
    {
        var times = new Dictionary<string, (double Skinny, double LibTorch)>();
        using var inference = inference_mode();
        foreach (var bypass in libTorchFirst ? new[] { true, false } : [false, true])
        {
            using var scope = NewDisposeScope();
            using var way = bypass ? SkinnyLinear.Bypass() : null;
            foreach (var (kind, weight, bias) in model.DecodeMatmuls)
            {
                var input = randn([rows, weight.shape[1]], dtype, device);
                var clock = Stopwatch.StartNew();
                using (SkinnyLinear.Linear(input, weight, bias))
                {
                    var seconds = clock.Elapsed.TotalSeconds;
                    var (skinny, libtorch) = times.GetValueOrDefault(kind);
                    times[kind] = bypass ? (skinny, libtorch + seconds) : (skinny + seconds, libtorch);
                }
            }
        }

        return times;
    }

    // Prefill seconds, seconds per decode step, decode steps: the loop's step callbacks come right after each step's logits.
    private static (double Prefill, double Decode, int Steps) Generate(ICausalLanguageModel model, Tensor ids, int newTokens, Device device)
    {
        var stamps = new List<double>();
        var clock = Stopwatch.StartNew();
        HardwareProbe.Synchronize(device);
        clock.Restart();
        using var tokens = GenerationLoop.Generate(model, ids, null, new GenerationOptions(MaxNewTokens: newTokens), onStepLogits: (_, _) =>
        {
            HardwareProbe.Synchronize(device);
            stamps.Add(clock.Elapsed.TotalSeconds);
        });
        var steps = stamps.Count - 1;
        return (stamps[0], steps > 0 ? (stamps[^1] - stamps[0]) / steps : double.NaN, steps);
    }

    // One round as it ends: its own figures, its matmuls' spread, and the forward against the best peak so far.
    private static string RoundLine(BenchModel model, List<Round> rounds, ModelBenchOptions o, bool generate, bool pytorch)
    {
        var round = rounds[^1];
        var peak = rounds.Max(r => r.Hardware!.MatmulFlopsPerSecond);
        var flops = model.Flops(o.Batch, o.Sequence, 0, model.Decoder is null ? 0 : o.Sequence, causal: model.Decoder is not null);
        var line = Invariant($"round {rounds.Count}/{o.Rounds}: matmul {string.Join(" ", round.Hardware!.MatmulTrials.Select(t => (t / 1e9).ToString("F1", CultureInfo.InvariantCulture)))} GFLOP/s (best so far {peak / 1e9:F1}); forward {round.Forward:F3} s = {flops / round.Forward / peak:P0} of that peak");
        if (generate)
        {
            line += Invariant($"; prefill {round.Prefill:F3} s; decode {round.Decode * 1e3:F1} ms per step");
            if (round.Matmuls is { } matmuls)
            {
                line += Invariant($" ({round.LibTorchDecode * 1e3:F1} ms through libtorch's linear; the step's matmuls alone {matmuls.Values.Sum(t => t.Skinny) * 1e3:F1} ms on SkinnyLinear, {matmuls.Values.Sum(t => t.LibTorch) * 1e3:F1} ms through libtorch)");
            }
        }

        if (pytorch)
        {
            line += Invariant($"; PyTorch forward {round.PyTorchForward:F3} s{(generate ? $", decode {round.PyTorchDecode * 1e3:F1} ms per step" : string.Empty)}");
        }

        return line;
    }

    private static async Task Report(TextWriter output, BenchModel model, List<Round> rounds, ModelBenchOptions o, string dtype, DeviceName device, bool generate, bool pytorch)
    {
        var (batch, sequence) = ((long)o.Batch, (long)o.Sequence);
        var n = rounds.Count;
        var peak = rounds.Max(r => r.Hardware!.MatmulFlopsPerSecond);
        var read = Median(rounds.Select(r => r.Hardware!.ReadBytesPerSecond));
        var copy = Median(rounds.Select(r => r.Hardware!.CopyBytesPerSecond));
        await output.WriteLineAsync(Invariant($"figures: medians of {n} round(s), each round measuring everything below once (after one warm-up on small shapes); ratios are TorchSharp / PyTorch speed within a round, then their median; the matmul peak is the best of {n * MatmulTrialsPerRound} matmuls ({MatmulTrialsPerRound} a round; load only makes one fall short of the peak)"));
        await output.WriteLineAsync(Invariant($"  device: matmul {o.MatmulSize}^3 {dtype} {peak / 1e9:F1} GFLOP/s (TorchSharp, best of {n * MatmulTrialsPerRound}){(pytorch ? $", {rounds.Max(r => r.PyTorchMatmul) / 1e9:F1} GFLOP/s (PyTorch, best of {n})" : string.Empty)}; memory: sum of {o.BandwidthMb} MB {read / 1e9:F2} GB/s read, copy {copy / 1e9:F2} GB/s read+written"));

        var forwardFlops = model.Flops(batch, sequence, 0, model.Decoder is null ? 0 : sequence, causal: model.Decoder is not null);
        var forward = Median(rounds.Select(r => r.Forward));
        var forwardLine = Invariant($"  forward {batch}x{sequence} ({forwardFlops / 1e9:F1} GFLOP per batch): TorchSharp {forward:F3} s per batch, {batch * sequence / forward:F1} tokens/s, {forwardFlops / forward / 1e9:F1} GFLOP/s = {forwardFlops / forward / peak:P0} of the matmul peak{PeakWarning(forwardFlops / forward / peak)}");
        double? forwardRatio = null;
        if (pytorch)
        {
            forwardRatio = Median(rounds.Select(r => r.PyTorchForward / r.Forward));
            forwardLine += Invariant($"; PyTorch {Median(rounds.Select(r => r.PyTorchForward)):F3} s per batch; TorchSharp/PyTorch speed {PerRound(rounds, r => r.PyTorchForward / r.Forward)}");
        }

        await output.WriteLineAsync(forwardLine);
        double? decodeRatio = null;
        if (generate)
        {
            var prefillFlops = model.Flops(batch, sequence, 0, 1, causal: true);
            var prefill = Median(rounds.Select(r => r.Prefill));
            var prefillLine = Invariant($"  generate prefill {batch}x{sequence} (head on the last position, {prefillFlops / 1e9:F1} GFLOP): TorchSharp {prefill:F3} s, {prefillFlops / prefill / 1e9:F1} GFLOP/s = {prefillFlops / prefill / peak:P0} of the matmul peak{PeakWarning(prefillFlops / prefill / peak)}");
            if (pytorch)
            {
                prefillLine += Invariant($"; PyTorch {Median(rounds.Select(r => r.PyTorchPrefill)):F3} s; speed {PerRound(rounds, r => r.PyTorchPrefill / r.Prefill)}");
            }

            await output.WriteLineAsync(prefillLine);
            var decode = Median(rounds.Select(r => r.Decode));
            var steps = rounds.Min(r => r.DecodeSteps);
            var bytes = model.DecodeBytes(batch, sequence + (o.NewTokens / 2));
            var bound = bytes / read;
            var decodeLine = Invariant($"  generate decode, {steps} steps of {batch} row(s) x 1 token: TorchSharp {decode * 1e3:F1} ms per step (per output token of a row), {batch / decode:F1} tokens/s; bound: {bytes / 1e9:F2} GB read per step / {read / 1e9:F2} GB/s = {bound * 1e3:F1} ms, so {decode / bound:F2}x the bound");
            if (pytorch)
            {
                decodeRatio = Median(rounds.Select(r => r.PyTorchDecode / r.Decode));
                decodeLine += Invariant($"; PyTorch {Median(rounds.Select(r => r.PyTorchDecode)) * 1e3:F1} ms per step; speed {PerRound(rounds, r => r.PyTorchDecode / r.Decode)}");
            }

            await output.WriteLineAsync(decodeLine);
            if (rounds.All(r => r.Matmuls is not null))
            {
                await output.WriteLineAsync(DecodeBreakdown(rounds, batch, decode));
            }
        }

        var fraction = model.Flops(batch, sequence, 0, model.Decoder is null ? 0 : sequence, model.Decoder is not null) / forward / peak;
        await output.WriteLineAsync(pytorch
            ? Invariant($"headline: TorchSharp/PyTorch eager speed, forward {forwardRatio:F2}x{(decodeRatio is { } d ? $", decode {d:F2}x" : string.Empty)} ({o.Model}, {batch}x{sequence}, {dtype}, {device}, median of {n})")
            : Invariant($"headline: forward at {fraction:P0} of the matmul peak measured in the same run ({o.Model}, {batch}x{sequence}, {dtype}, {device}, median of {n}; no PyTorch baseline)"));
    }

    // Where a decode step's time goes: the step through libtorch's linear beside it, then its matmuls kind by kind (both
    // ways, back to back), then what is left of the step: the other ops, and the matmuls' own slowdown inside the step
    // (they ran slower there than back to back in an instrumented run: docs/benchmarks.md). Medians over the rounds.
    private static string DecodeBreakdown(List<Round> rounds, long batch, double decode)
    {
        var libtorch = Median(rounds.Select(r => r.LibTorchDecode));
        var kinds = rounds[0].Matmuls!.Keys.ToList();
        var byKind = kinds.Select(k => (Kind: k, Skinny: Median(rounds.Select(r => r.Matmuls![k].Skinny)), LibTorch: Median(rounds.Select(r => r.Matmuls![k].LibTorch)))).ToList();
        var matmuls = Median(rounds.Select(r => r.Matmuls!.Values.Sum(t => t.Skinny)));
        var parts = string.Join(", ", byKind.Select(k => Invariant($"{k.Kind} {k.Skinny * 1e3:F2}/{k.LibTorch * 1e3:F2}")));
        var narrow = rounds.All(r => r.NarrowDecode > 0)
            ? Invariant($"\n  decode step of {batch} row(s) on SkinnyLinear's 8-lane AVX2 kernel instead of its 16-lane AVX-512 one: {Median(rounds.Select(r => r.NarrowDecode)) * 1e3:F1} ms, speed 16 lanes / 8 {PerRound(rounds, r => r.NarrowDecode / r.Decode)}")
            : Invariant($"\n  SkinnyLinear ran {SkinnyLinear.Lanes} lanes (AVX-512 would run 16)");
        return Invariant($"  decode step of {batch} row(s) with every matmul through libtorch's linear (its BLAS above) instead: {libtorch * 1e3:F1} ms, speed with SkinnyLinear / without {PerRound(rounds, r => r.LibTorchDecode / r.Decode)}")
            + narrow
            + Invariant($"\n  decode step by op, ms (SkinnyLinear/libtorch linear, each kind summed over its layers, in the step's order): {parts}; matmuls timed back to back {matmuls * 1e3:F1} ms = {matmuls / decode:P0} of the step; the step less that {(decode - matmuls) * 1e3:F1} ms (attention over the cache, norms, position encoding, activations, cache writes and next-token choice, plus whatever the matmuls lose between those ops inside the step)");
    }

    // "1.06x" for one round; "1.02 1.06 1.31 per round, median 1.06x" for several (noisy machines: the spread shows).
    private static string PerRound(List<Round> rounds, Func<Round, double> ratio)
    {
        var median = Median(rounds.Select(ratio));
        return rounds.Count == 1
            ? Invariant($"{median:F2}x")
            : Invariant($"{string.Join(" ", rounds.Select(r => ratio(r).ToString("F2", CultureInfo.InvariantCulture)))} per round, median {median:F2}x");
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private sealed class Round
    {
        public HardwareProbe.Result? Hardware { get; set; }

        public double Forward { get; set; }

        public double Prefill { get; set; }

        public double Decode { get; set; }

        public int DecodeSteps { get; set; }

        public double PyTorchMatmul { get; set; }

        public double PyTorchForward { get; set; }

        public double PyTorchPrefill { get; set; }

        public double PyTorchDecode { get; set; }

        /// <summary>Seconds per decode step with every linear layer through libtorch's <c>linear</c>.</summary>
        public double LibTorchDecode { get; set; }

        /// <summary>Seconds per decode step on SkinnyLinear's 8-lane AVX2 kernel where the 16-lane one runs; 0 otherwise.</summary>
        public double NarrowDecode { get; set; }

        /// <summary>Per kind of matmul: seconds in one decode step, summed over layers; null when not measured.</summary>
        public Dictionary<string, (double Skinny, double LibTorch)>? Matmuls { get; set; }
    }

    // Above the peak means the peak was mis-measured (too small a --matmul-size, or a noisy round), not a fast model.
    private static string PeakWarning(double fraction) =>
        fraction > 1 ? " (above the measured peak: that peak is too low to compare with; raise --matmul-size or the rounds)" : string.Empty;
}
