using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Text-to-image as diffusers' <c>StableDiffusionPipeline.__call__</c> computes it, on one device: encode the prompts
/// (and, with classifier-free guidance, the negative prompts) with the CLIP text encoder; take the initial latents
/// (given, or drawn per row) times the scheduler's <c>init_noise_sigma</c>; per timestep, run the UNet on
/// <c>cat([latents] * 2)</c> (negative rows first) scaled by the scheduler, combine <c>uncond + g * (text - uncond)</c>,
/// step the scheduler; decode <c>latents / scaling_factor</c> with the VAE; <c>(x * 0.5 + 0.5).clamp(0, 1)</c>; uint8
/// <c>(x * 255).round()</c> (half to even, as numpy). Latents and the scheduler's arithmetic are in the models' dtype
/// (Euler's step in float32), as in diffusers. Build one with <see cref="StableDiffusionSource.CreatePipeline"/>; use it
/// from one thread at a time.
/// </summary>
public sealed class StableDiffusionPipeline : IDisposable
{
    private Device _device;

    internal StableDiffusionPipeline(StableDiffusionSource source, ClipTextModel textEncoder, UNet2DConditionModel unet, AutoencoderKL vae, Device device, ScalarType dtype)
    {
        Source = source;
        TextEncoder = textEncoder;
        Unet = unet;
        Vae = vae;
        _device = device;
        Dtype = dtype;
    }

    /// <summary>Where the pipeline came from (configs, tokenizer, schedulers).</summary>
    public StableDiffusionSource Source { get; }

    /// <summary>The CLIP text encoder.</summary>
    public ClipTextModel TextEncoder { get; }

    /// <summary>The noise predictor.</summary>
    public UNet2DConditionModel Unet { get; }

    /// <summary>The VAE.</summary>
    public AutoencoderKL Vae { get; }

    /// <summary>The models' dtype.</summary>
    public ScalarType Dtype { get; }

    /// <summary>
    /// <c>DiffusionPipeline.from_pretrained(name, torch_dtype=dtype)</c>: a pipeline folder or a built-in name
    /// (<see cref="StableDiffusionSource.BuiltIn"/>, random weights from <paramref name="seed"/>), on the CPU.
    /// </summary>
    /// <exception cref="InvalidInputException">As <see cref="StableDiffusionSource.Resolve"/> and <see cref="StableDiffusionSource.CreatePipeline"/>.</exception>
    public static StableDiffusionPipeline FromPretrained(string folderOrBuiltIn, ScalarType dtype = ScalarType.Float32, long seed = 0) =>
        StableDiffusionSource.Resolve(folderOrBuiltIn, seed).CreatePipeline(CPU, dtype);

    /// <summary><c>pipe.to(device)</c>: moves the three models there; returns this pipeline.</summary>
    public StableDiffusionPipeline To(Runtime.DeviceName device)
    {
        _device = device.ToTorch();
        foreach (var module in new nn.Module[] { TextEncoder, Unet, Vae })
        {
            module.to(_device);
        }

        return this;
    }

    /// <summary>
    /// <c>pipe(prompt, negative_prompt=...).images</c>: one image per prompt, row i's latents drawn from
    /// <paramref name="options"/>' seed and i (or <paramref name="rowIndex"/>[i]).
    /// </summary>
    /// <param name="prompt">The prompts.</param>
    /// <param name="options">Steps, guidance, scheduler, size, seed; the pipeline's defaults when null.</param>
    /// <param name="negativePrompt">One per prompt; null: "" for each.</param>
    /// <returns>The images, in prompt order; the caller owns them.</returns>
    public IReadOnlyList<GeneratedImage> Call(IReadOnlyList<string> prompt, TextToImageOptions? options = null, IReadOnlyList<string>? negativePrompt = null, IReadOnlyList<long>? rowIndex = null)
    {
        if (negativePrompt is not null && negativePrompt.Count != prompt.Count)
        {
            throw new InvalidInputException($"negative_prompt has {negativePrompt.Count} texts for {prompt.Count} prompts");
        }

        if (prompt.Count == 0)
        {
            return [];
        }

        using var ids = Source.Tokenizer.Tokenize(prompt);
        using var negative = Source.Tokenizer.Tokenize(negativePrompt ?? prompt.Select(_ => string.Empty).ToList());
        using var images = Generate(ids, negative, options ?? TextToImageOptions.Default, rowIndex);
        return Enumerable.Range(0, prompt.Count).Select(i => new GeneratedImage(images[i].clone())).ToList();
    }

    /// <summary>
    /// The image size a request asks for: height and width (default <c>unet.sample_size x vae_scale_factor</c>) and the
    /// latents' h and w.
    /// </summary>
    /// <exception cref="InvalidInputException">A height or width that is not a multiple of the VAE's factor.</exception>
    public static (int Height, int Width, int LatentHeight, int LatentWidth) Size(StableDiffusionSource source, TextToImageOptions options)
    {
        var factor = source.VaeScaleFactor;
        var (height, width) = (options.Height ?? source.DefaultSize, options.Width ?? source.DefaultSize);
        if (height % factor != 0 || width % factor != 0)
        {
            throw new InvalidInputException($"--height and --width must be multiples of the VAE's scale factor {factor}, got {height}x{width}");
        }

        return (height, width, height / factor, width / factor);
    }

    /// <summary>
    /// The initial latents of rows not given theirs: per row, unit Gaussian noise [C, h, w] in float32 on the CPU from a
    /// generator seeded by <paramref name="seed"/> and the row's index (so a row's noise is the same in any batch, on
    /// any device); [B, C, h, w], owned by the caller.
    /// </summary>
    public static Tensor DrawLatents(IReadOnlyList<long> rowIndex, long seed, long channels, long height, long width)
    {
        using var scope = NewDisposeScope();
        var rows = rowIndex.Select(row =>
        {
            using var generator = new Generator(Seeds.Mix((ulong)seed, (ulong)row), CPU);
            return randn([1, channels, height, width], ScalarType.Float32, generator: generator);
        }).ToArray();
        return cat(rows, 0).MoveToOuterDisposeScope();
    }

    /// <summary><c>text_encoder(input_ids).last_hidden_state</c>; see <see cref="ClipTextModel.LastHiddenState"/>.</summary>
    /// <param name="inputIds">[B, 77] int64 (any device).</param>
    /// <returns>[B, 77, hidden] on the pipeline's device in its dtype; the caller owns it.</returns>
    public Tensor EncodePrompt(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        return TextEncoder.LastHiddenState(inputIds.to(ScalarType.Int64).to(_device)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Generates one image per row (see the class summary).
    /// </summary>
    /// <param name="inputIds">[B, 77] int64 prompt rows (<see cref="ClipTokenizer.Tokenize"/>).</param>
    /// <param name="negativeInputIds">[B, 77] negative prompt rows; null: the empty prompt. Unused without guidance.</param>
    /// <param name="options">Steps, guidance, scheduler, size, seed.</param>
    /// <param name="rowIndex">Each row's index in its job (seeds its latents); null: 0..B-1.</param>
    /// <param name="latents">[B, C, h, w] initial latents (before init_noise_sigma); null: drawn per row.</param>
    /// <param name="onStep">Called after each denoising step with the step's number (1-based).</param>
    /// <param name="observe">Receives intermediate tensors by name and step (<c>unet_input</c>, <c>noise_pred_raw</c>,
    /// <c>noise_pred</c>, <c>latents</c> per step; <c>latents_init</c>, <c>decoded</c>, <c>image</c> at step -1); valid only
    /// during the call (clone what is kept).</param>
    /// <returns>uint8 [B, H, W, 3] on the CPU, owned by the caller.</returns>
    /// <exception cref="InvalidInputException">Rows of the wrong shape, latents of the wrong shape, a bad size or scheduler.</exception>
    public Tensor Generate(Tensor inputIds, Tensor? negativeInputIds, TextToImageOptions options, IReadOnlyList<long>? rowIndex = null, Tensor? latents = null,
        Action<int>? onStep = null, Action<string, int, Tensor>? observe = null)
    {
        options.Validate();
        var batch = inputIds.shape[0];
        var tokens = Source.Tokenizer.ModelMaxLength;
        CheckRows("input_ids", inputIds, batch, tokens);
        if (negativeInputIds is not null)
        {
            CheckRows("negative_input_ids", negativeInputIds, batch, tokens);
        }

        var (height, width, latentHeight, latentWidth) = Size(Source, options);
        var channels = Unet.Config.InChannels;
        if (latents is not null && !latents.shape.SequenceEqual([batch, channels, latentHeight, latentWidth]))
        {
            throw new InvalidInputException(
                $"latents must be [{batch}, {channels}, {latentHeight}, {latentWidth}] for {batch} prompt(s) at {height}x{width}, got [{string.Join(", ", latents.shape)}]");
        }

        using var scheduler = DiffusionScheduler.Create(Source.Scheduler(options.Scheduler), options.NumInferenceSteps);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var guided = options.DoClassifierFreeGuidance;
        var embeddings = EncodePrompt(inputIds);
        if (guided)
        {
            using var emptyRows = negativeInputIds is null ? Source.Tokenizer.Tokenize(Enumerable.Repeat(string.Empty, (int)batch).ToList()) : null;
            var negative = EncodePrompt(negativeInputIds ?? emptyRows!);
            embeddings = cat([negative, embeddings], 0);
        }

        var rows = rowIndex ?? Enumerable.Range(0, (int)batch).Select(i => (long)i).ToList();
        var initial = latents?.to(ScalarType.Float32).cpu() ?? DrawLatents(rows, options.Seed, channels, latentHeight, latentWidth);
        observe?.Invoke("latents_init", -1, initial);
        var current = (initial.to(Dtype).to(_device) * scheduler.InitNoiseSigma).MoveToOuterDisposeScope();
        try
        {
            for (var i = 0; i < scheduler.Timesteps.Count; i++)
            {
                using var step = NewDisposeScope();
                var input = guided ? cat([current, current], 0) : current;
                input = scheduler.ScaleModelInput(input, i);
                observe?.Invoke("unet_input", i, input);
                using var timestep = tensor(scheduler.Timesteps[i], ScalarType.Float64, _device);
                var noise = Unet.Forward(input, timestep, embeddings);
                observe?.Invoke("noise_pred_raw", i, noise);
                if (guided)
                {
                    var halves = noise.chunk(2, 0);
                    noise = halves[0] + (options.GuidanceScale * (halves[1] - halves[0]));
                }

                observe?.Invoke("noise_pred", i, noise);
                var next = scheduler.Step(noise, i, current);
                observe?.Invoke("latents", i, next);
                current.Dispose();
                current = next.MoveToOuterDisposeScope();
                onStep?.Invoke(i + 1);
            }

            var decoded = Vae.Decode(current / Vae.Config.ScalingFactor);
            observe?.Invoke("decoded", -1, decoded);
            var image = ((decoded * 0.5) + 0.5).clamp(0, 1);
            observe?.Invoke("image", -1, image);
            return image.cpu().to(ScalarType.Float32).permute(0, 2, 3, 1).mul(255).round().to(ScalarType.Byte).contiguous().MoveToOuterDisposeScope();
        }
        finally
        {
            current.Dispose();
        }
    }

    public void Dispose()
    {
        TextEncoder.Dispose();
        Unet.Dispose();
        Vae.Dispose();
    }

    private static void CheckRows(string name, Tensor rows, long batch, int tokens)
    {
        if (rows.dim() != 2 || rows.shape[0] != batch || rows.shape[1] != tokens || rows.dtype is not (ScalarType.Int64 or ScalarType.Int32))
        {
            throw new InvalidInputException($"{name} must be int64 [{batch}, {tokens}] (the tokenizer's padded rows), got {rows.dtype} [{string.Join(", ", rows.shape)}]");
        }
    }
}
