using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// A <c>di infer --task text-to-image</c> job checked end to end before any model is loaded (the pipeline folder and
/// its configs, the prompts, sizes, scheduler, latents, outputs): every error is one line here, and nothing is written.
/// It then knows the rows to split (<see cref="TextToImageRows"/>) and writes the images: a safetensors file holding
/// <c>images</c> (uint8 [B, H, W, 3], input order), or a folder with <c>image_{index}.png</c> per prompt and
/// <c>index.jsonl</c> (<c>{"index", "prompt", "file"}</c>).
/// </summary>
public sealed class TextToImageJob
{
    /// <summary>The JSON lines index written beside the PNGs.</summary>
    public const string IndexFile = "index.jsonl";

    private TextToImageJob(StableDiffusionModelSource source, ScalarType dtype, IReadOnlyList<DeviceName> devices, IReadOnlyList<string> prompts,
        TextToImageOptions options, Tensor inputIds, Tensor negativeIds, Tensor? latents, (int Height, int Width) size, string scheduler, string? outputPath, string? outputDir)
    {
        Source = source;
        DType = dtype;
        Devices = devices;
        Prompts = prompts;
        Options = options;
        InputIds = inputIds;
        NegativeInputIds = negativeIds;
        Latents = latents;
        Size = size;
        Scheduler = scheduler;
        OutputPath = outputPath;
        OutputDir = outputDir;
    }

    public StableDiffusionModelSource Source { get; }

    public ScalarType DType { get; }

    public IReadOnlyList<DeviceName> Devices { get; }

    public IReadOnlyList<string> Prompts { get; }

    /// <summary>Every row's options (with the job's seed).</summary>
    public TextToImageOptions Options { get; }

    /// <summary>[B, 77] int64 prompt rows.</summary>
    public Tensor InputIds { get; }

    /// <summary>[B, 77] int64 negative prompt rows.</summary>
    public Tensor NegativeInputIds { get; }

    /// <summary>[B, C, h, w] float32 from <c>--latents</c>, or null.</summary>
    public Tensor? Latents { get; }

    /// <summary>Image height and width in pixels.</summary>
    public (int Height, int Width) Size { get; }

    /// <summary>The scheduler's diffusers class name.</summary>
    public string Scheduler { get; }

    public string? OutputPath { get; }

    public string? OutputDir { get; }

    /// <summary>Runs from the moment the job was checked: the summary's wall time includes loading.</summary>
    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    /// <summary>Whether the options ask for text-to-image (then <see cref="Prepare"/> takes the job, not PreparedJob).</summary>
    public static bool IsTextToImage(InferOptions options) =>
        options.Task == InferenceTask.TextToImage;

    /// <exception cref="InvalidInputException">One line naming what is wrong.</exception>
    public static TextToImageJob Prepare(InferOptions options)
    {
        LibTorch.Initialize(options.LibTorch);
        var request = options.Image ?? new TextToImageRequest();
        var dtype = options.DType.ToScalarType();
        var devices = DeviceName.ParseList(options.Devices);
        if (options.Mode == Mode.Pipeline)
        {
            throw new InvalidInputException("pipeline mode does not run text-to-image yet: use --mode replica (each device holds the whole Stable Diffusion pipeline)");
        }

        if (options.MaxBatchSize <= 0)
        {
            throw new InvalidInputException($"--max-batch-size must be positive, got {options.MaxBatchSize}");
        }

        if (options.InputIdsPath is not null)
        {
            throw new InvalidInputException("text-to-image takes --prompts or --prompts-file, not --input-ids");
        }

        var imageOptions = new TextToImageOptions(request.NumInferenceSteps, request.GuidanceScale, request.Scheduler?.Trim().ToLowerInvariant(), request.Height, request.Width, options.Seed).Validate();
        CheckOutputs(options.OutputPath, request.OutputDir);
        if (options.JsonSummaryPath is not null)
        {
            InputChecks.Writable("--json-summary", options.JsonSummaryPath);
        }

        foreach (var device in devices.Distinct())
        {
            device.ToTorch();
        }

        var resolved = AutoModelSource.Resolve(options.Model, options.Seed);
        ModelTasks.Require(resolved, InferenceTask.TextToImage);
        var source = (StableDiffusionModelSource)resolved;
        var inputs = (options.Prompts is { Count: > 0 } ? 1 : 0) + (options.PromptsFile is not null ? 1 : 0);
        if (inputs != 1)
        {
            throw new InvalidInputException("give exactly one of --prompts, --prompts-file");
        }

        var prompts = options.Prompts is { Count: > 0 } inline ? inline : InputChecks.PromptLines(options.PromptsFile!);
        var (height, width, latentHeight, latentWidth) = StableDiffusionPipeline.Size(source.Source, imageOptions);
        var scheduler = source.Source.Scheduler(imageOptions.Scheduler);
        DiffusionScheduler.Create(scheduler, imageOptions.NumInferenceSteps).Dispose();
        var latents = request.LatentsPath is { } path ? ReadLatents(path, prompts.Count, source.Source.Unet.InChannels, latentHeight, latentWidth, height, width) : null;
        var ids = source.Source.Tokenizer.Tokenize(prompts);
        var negatives = request.NegativePrompt is { Count: > 0 } given ? given : [string.Empty];
        if (negatives.Count != 1 && negatives.Count != prompts.Count)
        {
            throw new InvalidInputException($"--negative-prompt: give one text for every prompt or one per prompt ({prompts.Count}), got {negatives.Count}");
        }

        var negative = source.Source.Tokenizer.Tokenize(prompts.Select((_, i) => negatives[negatives.Count == 1 ? 0 : i]).ToList());
        return new TextToImageJob(source, dtype, devices, prompts, imageOptions, ids, negative, latents, (height, width), scheduler.ClassName, options.OutputPath, request.OutputDir);
    }

    /// <summary>The rows the job splits: ids, negative ids, row indices, options per row, and the given latents.</summary>
    public IReadOnlyDictionary<string, object> Rows() =>
        TextToImageRows.Of(InputIds, NegativeInputIds, Options, arange(Prompts.Count, ScalarType.Int64), Latents);

    /// <summary>A short description: <c>3 image(s) 512x512, 50 steps, PNDMScheduler, guidance 7.5</c>.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Prompts.Count} image(s) {Size.Width}x{Size.Height}, {Options.NumInferenceSteps} steps, {Scheduler}, guidance {Options.GuidanceScale}");

    /// <summary>Writes the images in input order, then the summary line (and JSON) the options ask for.</summary>
    /// <param name="images">uint8 [B, H, W, 3]; not disposed.</param>
    public void Complete(InferOptions options, Tensor images, string mode, int devices, TextWriter stderr)
    {
        if (Source.RandomSeed is { } seed)
        {
            stderr.WriteLine($"di: {Source.Name} is a built-in configuration with random weights (seed {seed}); give --model DIR for a trained pipeline");
        }

        if (images.dtype != ScalarType.Byte || !images.shape.SequenceEqual([Prompts.Count, Size.Height, Size.Width, 3]))
        {
            throw new Actors.Kernel.Requests.JobFailedException($"the devices returned {images.dtype} [{string.Join(", ", images.shape)}], not uint8 [{Prompts.Count}, {Size.Height}, {Size.Width}, 3]");
        }

        if (OutputPath is not null)
        {
            SafeTensorsFile.Write(OutputPath, new Dictionary<string, Tensor> { ["images"] = images }, new Dictionary<string, string> { ["task"] = InferenceTask.TextToImage.Name() });
        }
        else
        {
            Directory.CreateDirectory(OutputDir!);
            var lines = new StringBuilder();
            for (var i = 0; i < Prompts.Count; i++)
            {
                var file = $"image_{i}.png";
                using var image = images[i];
                PngImage.Save(image, Path.Combine(OutputDir!, file));
                lines.AppendLine(JsonLines.Serialize(new Dictionary<string, object> { ["index"] = i, ["prompt"] = Prompts[i], ["file"] = file }));
            }

            AtomicFile.Write(Path.Combine(OutputDir!, IndexFile), stream =>
            {
                using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
                writer.Write(lines.ToString());
            });
        }

        var seconds = Clock.Elapsed.TotalSeconds;
        var steps = (long)Prompts.Count * Options.NumInferenceSteps;
        if (!options.Quiet)
        {
            stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"di: done: {Source.Name} text-to-image, {mode} on {devices} device(s): {Describe()} in {seconds:F2} s, {Prompts.Count / Math.Max(seconds, 1e-9):F3} images/s, {steps} denoising steps"));
        }

        if (options.JsonSummaryPath is not null)
        {
            AtomicFile.Write(options.JsonSummaryPath, stream => JsonSerializer.Serialize(stream, new Dictionary<string, object>
            {
                ["model"] = Source.Name,
                ["task"] = InferenceTask.TextToImage.Name(),
                ["mode"] = mode,
                ["devices"] = devices,
                ["rows"] = Prompts.Count,
                ["height"] = Size.Height,
                ["width"] = Size.Width,
                ["num_inference_steps"] = Options.NumInferenceSteps,
                ["denoising_steps"] = steps,
                ["scheduler"] = Scheduler,
                ["wall_seconds"] = seconds,
                ["rows_per_second"] = Prompts.Count / Math.Max(seconds, 1e-9),
            }));
        }
    }

    private static void CheckOutputs(string? outputPath, string? outputDir)
    {
        if ((outputPath is null) == (outputDir is null))
        {
            throw new InvalidInputException("text-to-image writes images: give --output F.safetensors or --output-dir DIR (one of them)");
        }

        if (outputPath is not null)
        {
            if (!string.Equals(Path.GetExtension(outputPath), ".safetensors", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidInputException($"--output {outputPath}: text-to-image writes a .safetensors file (tensor images), or PNGs with --output-dir");
            }

            var folder = Path.GetDirectoryName(Path.GetFullPath(outputPath))!;
            if (!Directory.Exists(folder) || Directory.Exists(outputPath))
            {
                throw new InvalidInputException($"--output {outputPath}: {(Directory.Exists(outputPath) ? "is a folder" : $"folder {folder} does not exist")}");
            }

            InputChecks.Writable("--output", outputPath);
            return;
        }

        if (File.Exists(outputDir))
        {
            throw new InvalidInputException($"--output-dir {outputDir}: is a file");
        }

        var existing = Directory.Exists(outputDir) ? outputDir! : Path.GetDirectoryName(Path.GetFullPath(outputDir!))!;
        if (!Directory.Exists(existing))
        {
            throw new InvalidInputException($"--output-dir {outputDir}: its parent folder {existing} does not exist");
        }

        InputChecks.Writable("--output-dir", Path.Combine(existing, IndexFile));
    }

    private static Tensor ReadLatents(string path, int prompts, long channels, long height, long width, int imageHeight, int imageWidth)
    {
        var file = SafeTensorsFile.Open(path);
        if (!file.Contains("latents"))
        {
            throw new InvalidInputException($"{path}: no tensor named latents (found: {string.Join(", ", file.Names)})");
        }

        var latents = file.Read("latents");
        if (!latents.shape.SequenceEqual([prompts, channels, height, width]) || !latents.is_floating_point())
        {
            throw new InvalidInputException(
                $"{path}: latents must be float [{prompts}, {channels}, {height}, {width}] for {prompts} prompt(s) at {imageWidth}x{imageHeight}, got {latents.dtype} [{string.Join(", ", latents.shape)}]");
        }

        return latents.to(ScalarType.Float32);
    }
}
