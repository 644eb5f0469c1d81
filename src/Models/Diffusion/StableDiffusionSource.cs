using System.Text.Json.Nodes;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Where a Stable Diffusion pipeline comes from: a diffusers <c>StableDiffusionPipeline</c> folder (SD 1.x/2.x layout:
/// <c>model_index.json</c>, <c>text_encoder/</c>, <c>tokenizer/</c>, <c>unet/</c>, <c>vae/</c>, <c>scheduler/</c>; a
/// <c>safety_checker</c> or <c>feature_extractor</c> is ignored), read as <c>DiffusionPipeline.from_pretrained</c> reads
/// it; or a built-in configuration (<see cref="BuiltIn"/>) with random weights from a seed. Configs and the
/// tokenizer are read at once (every error before any weight is read); weights when a pipeline is made.
/// </summary>
public sealed class StableDiffusionSource
{
    /// <summary>The pipeline components this runtime loads, with the classes model_index.json may name for them.</summary>
    public static IReadOnlyDictionary<string, string[]> Components { get; } = new Dictionary<string, string[]>
    {
        ["text_encoder"] = ["CLIPTextModel"],
        ["tokenizer"] = ["CLIPTokenizer", "CLIPTokenizerFast"],
        ["unet"] = ["UNet2DConditionModel"],
        ["vae"] = ["AutoencoderKL"],
        ["scheduler"] = ["PNDMScheduler", "DDIMScheduler", "EulerDiscreteScheduler"],
    };

    private readonly Lazy<ClipTokenizer> _tokenizer;
    private readonly JsonObject _scheduler;
    private readonly string _schedulerSource;

    private StableDiffusionSource(string name, long seed, bool builtIn, ClipTextConfig text, UNet2DConditionConfig unet, AutoencoderKLConfig vae,
        JsonObject scheduler, string schedulerSource, Func<ClipTokenizer> tokenizer)
    {
        Name = name;
        Seed = seed;
        IsBuiltIn = builtIn;
        TextEncoder = text;
        Unet = unet;
        Vae = vae;
        _scheduler = scheduler;
        _schedulerSource = schedulerSource;
        _tokenizer = new Lazy<ClipTokenizer>(tokenizer);
        DefaultScheduler = SchedulerConfig.FromConfig(schedulerSource, scheduler);
    }

    /// <summary>The folder path or the built-in name.</summary>
    public string Name { get; }

    /// <summary>Seed of a built-in's random weights (unused for folders).</summary>
    public long Seed { get; }

    /// <summary>True for a built-in configuration with random weights.</summary>
    public bool IsBuiltIn { get; }

    /// <summary><c>text_encoder/config.json</c>.</summary>
    public ClipTextConfig TextEncoder { get; }

    /// <summary><c>unet/config.json</c>.</summary>
    public UNet2DConditionConfig Unet { get; }

    /// <summary><c>vae/config.json</c>.</summary>
    public AutoencoderKLConfig Vae { get; }

    /// <summary>The folder's scheduler as the pipeline loads it.</summary>
    public SchedulerConfig DefaultScheduler { get; }

    /// <summary>The tokenizer (loaded once; shared, thread-safe).</summary>
    public ClipTokenizer Tokenizer => _tokenizer.Value;

    /// <summary><c>vae_scale_factor</c> = 2^(len(vae.block_out_channels) - 1).</summary>
    public int VaeScaleFactor => Vae.ScaleFactor;

    /// <summary>Default height and width: <c>unet.sample_size x vae_scale_factor</c>.</summary>
    public int DefaultSize => Unet.SampleSize * VaeScaleFactor;

    /// <summary>Built-in pipelines (random weights from a seed, nothing downloaded): the published shapes of
    /// <c>sd-1.5</c> (runwayml/stable-diffusion-v1-5) and <c>sd-2.1-base</c> (stabilityai/stable-diffusion-2-1-base), and
    /// <c>sd-tiny</c> for tests (the fixture's shapes).</summary>
    public static IReadOnlyList<string> BuiltIn { get; } = ["sd-1.5", "sd-2.1-base", "sd-tiny"];

    /// <summary>Whether a folder is a diffusers pipeline (has <c>model_index.json</c>).</summary>
    public static bool IsPipelineFolder(string folder) => File.Exists(Path.Combine(folder, "model_index.json"));

    /// <summary>A pipeline folder if it exists, else a built-in name.</summary>
    /// <exception cref="InvalidInputException">An unknown name; a folder missing a component, with an unsupported class or config (one line).</exception>
    public static StableDiffusionSource Resolve(string folderOrBuiltIn, long seed = 0)
    {
        if (Directory.Exists(folderOrBuiltIn))
        {
            return FromFolder(folderOrBuiltIn);
        }

        var name = folderOrBuiltIn.ToLowerInvariant();
        return name switch
        {
            "sd-1.5" => BuiltInPipeline(name, seed, Sd1Text(), Sd1Unet(), SdVae(), padWithExclamation: false),
            "sd-2.1-base" => BuiltInPipeline(
                name, seed,
                new ClipTextConfig { VocabSize = 49408, HiddenSize = 1024, IntermediateSize = 4096, LayerCount = 23, HeadCount = 16, HiddenAct = "gelu" },
                Sd1Unet() with { AttentionHeads = [5, 10, 20, 20], CrossAttentionDim = [1024, 1024, 1024, 1024], UseLinearProjection = true },
                SdVae(), padWithExclamation: true),
            "sd-tiny" => BuiltInPipeline(
                name, seed,
                new ClipTextConfig { VocabSize = 1000, HiddenSize = 32, IntermediateSize = 64, LayerCount = 3, HeadCount = 4 },
                new UNet2DConditionConfig
                {
                    SampleSize = 16,
                    BlockOutChannels = [16, 32],
                    LayersPerBlock = [2, 2],
                    DownBlocks = ["CrossAttnDownBlock2D", "DownBlock2D"],
                    UpBlocks = ["UpBlock2D", "CrossAttnUpBlock2D"],
                    AttentionHeads = [2, 2],
                    CrossAttentionDim = [32, 32],
                    NormNumGroups = 8,
                    TransformerLayersPerBlock = [1, 1],
                },
                new AutoencoderKLConfig { BlockOutChannels = [16, 32], LayersPerBlock = 1, NormNumGroups = 8, SampleSize = 32 },
                padWithExclamation: false),
            _ => throw new InvalidInputException($"unknown model '{folderOrBuiltIn}': not a folder, and not a built-in ({string.Join(", ", BuiltIn)})"),
        };
    }

    /// <summary>
    /// <c>X.from_config(pipeline scheduler config)</c> for <paramref name="scheduler"/> (<c>pndm</c>, <c>ddim</c>,
    /// <c>euler</c>), or the folder's own scheduler when null.
    /// </summary>
    /// <exception cref="InvalidInputException">An unknown scheduler name, or a config it cannot run.</exception>
    public SchedulerConfig Scheduler(string? scheduler)
    {
        if (scheduler is null)
        {
            return DefaultScheduler;
        }

        if (!SchedulerConfig.ClassNames.TryGetValue(scheduler, out var className))
        {
            throw new InvalidInputException($"unknown scheduler '{scheduler}': use {string.Join(", ", SchedulerConfig.ClassNames.Keys)}");
        }

        return SchedulerConfig.FromConfig(_schedulerSource, _scheduler, className);
    }

    /// <summary>
    /// Builds the three models on <paramref name="device"/> in <paramref name="dtype"/>: from the folder's weights
    /// (strictly: every stored tensor used) or randomly for a built-in; evaluation mode, no gradients.
    /// </summary>
    /// <returns>A pipeline the caller owns (dispose it).</returns>
    /// <exception cref="InvalidInputException">A missing, unexpected or misshaped tensor, or a missing weight file (one line naming it).</exception>
    public StableDiffusionPipeline CreatePipeline(Device device, ScalarType dtype)
    {
        var text = new ClipTextModel(TextEncoder, device, dtype);
        var unet = new UNet2DConditionModel(Unet, device, dtype);
        var vae = new AutoencoderKL(Vae, device, dtype);
        foreach (var parameter in new nn.Module[] { text, unet, vae }.SelectMany(m => m.parameters()))
        {
            // Weights belong to the pipeline, never to a dispose scope the caller happens to have open.
            parameter.DetachFromDisposeScope();
        }

        try
        {
            Fill(text, "text_encoder", HuggingFaceCheckpoint.TransformersWeights);
            Fill(unet, "unet", "diffusion_pytorch_model");
            Fill(vae, "vae", "diffusion_pytorch_model");
            foreach (var module in new nn.Module[] { text, unet, vae })
            {
                module.eval();
            }

            return new StableDiffusionPipeline(this, text, unet, vae, device, dtype);
        }
        catch
        {
            text.Dispose();
            unet.Dispose();
            vae.Dispose();
            throw;
        }
    }

    private void Fill(nn.Module module, string component, string weights)
    {
        if (IsBuiltIn)
        {
            DiffusionWeights.InitializeRandom(module, component, Seed);
        }
        else
        {
            DiffusionWeights.Load(module, HuggingFaceCheckpoint.Open(Path.Combine(Name, component), weights));
        }
    }

    private static StableDiffusionSource FromFolder(string folder)
    {
        var index = ConfigJson.Load(Path.Combine(folder, "model_index.json"));
        if (index.String("_class_name") is { } pipeline && pipeline != "StableDiffusionPipeline")
        {
            throw index.Unsupported("_class_name", "StableDiffusionPipeline");
        }

        foreach (var (component, classes) in Components)
        {
            var entry = index.Json[component] as JsonArray;
            var className = entry is { Count: 2 } && entry[1] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            if (className is null)
            {
                throw new InvalidInputException($"{index.Source}: component {component} is missing (a StableDiffusionPipeline needs {string.Join(", ", Components.Keys)})");
            }

            if (!classes.Contains(className))
            {
                throw new InvalidInputException($"{index.Source}: {component} is a {className}, not supported ({string.Join(", ", classes)})");
            }

            if (!Directory.Exists(Path.Combine(folder, component)))
            {
                throw new InvalidInputException($"{folder}: component folder {component}/ is missing (model_index.json names it)");
            }
        }

        var text = ClipTextConfig.FromJson(Path.Combine(folder, "text_encoder", "config.json"));
        var unet = UNet2DConditionConfig.FromJson(Path.Combine(folder, "unet", "config.json"));
        var vae = AutoencoderKLConfig.FromJson(Path.Combine(folder, "vae", "config.json"));
        var schedulerPath = Path.Combine(folder, "scheduler", "scheduler_config.json");
        var scheduler = ConfigJson.Load(schedulerPath).Json;
        var tokenizer = ClipTokenizer.Load(Path.Combine(folder, "tokenizer"));
        if (unet.CrossAttentionDim.Any(d => d != text.HiddenSize))
        {
            tokenizer.Dispose();
            throw new InvalidInputException($"{folder}: unet cross_attention_dim {unet.CrossAttentionDim[0]} does not match text_encoder hidden_size {text.HiddenSize}");
        }

        if (vae.LatentChannels != unet.InChannels)
        {
            tokenizer.Dispose();
            throw new InvalidInputException($"{folder}: vae latent_channels {vae.LatentChannels} does not match unet in_channels {unet.InChannels}");
        }

        return new StableDiffusionSource(folder, 0, false, text, unet, vae, scheduler, schedulerPath, () => tokenizer);
    }

    private static StableDiffusionSource BuiltInPipeline(string name, long seed, ClipTextConfig text, UNet2DConditionConfig unet, AutoencoderKLConfig vae, bool padWithExclamation) =>
        new(name, seed, true, text.Validate(name), unet.Validate(name), vae.Validate(name), Sd1Scheduler(), $"{name} (built-in scheduler_config.json)",
            () => ClipTokenizer.BytesOnly(text.VocabSize, padWithExclamation));

    private static ClipTextConfig Sd1Text() => new() { VocabSize = 49408, HiddenSize = 768, IntermediateSize = 3072, LayerCount = 12, HeadCount = 12 };

    private static UNet2DConditionConfig Sd1Unet() => new() { CrossAttentionDim = [768, 768, 768, 768] };

    private static AutoencoderKLConfig SdVae() => new() { BlockOutChannels = [128, 256, 512, 512], LayersPerBlock = 2, SampleSize = 512 };

    // The scheduler file SD 1.5 and 2.1-base ship (PNDM, scaled_linear betas 0.00085..0.012, steps_offset 1).
    private static JsonObject Sd1Scheduler() => new()
    {
        ["_class_name"] = "PNDMScheduler",
        ["beta_end"] = 0.012,
        ["beta_schedule"] = "scaled_linear",
        ["beta_start"] = 0.00085,
        ["clip_sample"] = false,
        ["num_train_timesteps"] = 1000,
        ["set_alpha_to_one"] = false,
        ["skip_prk_steps"] = true,
        ["steps_offset"] = 1,
        ["trained_betas"] = null,
    };
}
