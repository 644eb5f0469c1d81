using System.Globalization;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Hyper-parameters of a Stable Diffusion UNet (diffusers' <c>UNet2DConditionModel</c>), read from
/// <c>unet/config.json</c> as <c>from_pretrained</c> reads it: keys left out take the class defaults; per-block values
/// given as one number apply to every block. <c>attention_head_dim</c> is, as in diffusers (a historic naming), the
/// NUMBER of heads of each block's transformers; each head is <c>channels / heads</c> wide. Features Stable Diffusion
/// 1.x/2.x do not use (class or addition embeddings, dual cross-attention, scale-shift resnets, ...) are refused by
/// name.
/// </summary>
public sealed record UNet2DConditionConfig
{
    /// <summary>Down block types this UNet builds.</summary>
    public static IReadOnlyList<string> DownBlockTypes { get; } = ["CrossAttnDownBlock2D", "DownBlock2D"];

    /// <summary>Up block types this UNet builds.</summary>
    public static IReadOnlyList<string> UpBlockTypes { get; } = ["CrossAttnUpBlock2D", "UpBlock2D"];

    /// <summary><c>sample_size</c>: the latent size the model was trained at (default image size = it x the VAE factor).</summary>
    public int SampleSize { get; init; } = 64;

    /// <summary><c>in_channels</c>: latent channels in.</summary>
    public int InChannels { get; init; } = 4;

    /// <summary><c>out_channels</c>: channels of the noise prediction.</summary>
    public int OutChannels { get; init; } = 4;

    /// <summary><c>center_input_sample</c>: the sample is mapped by 2x-1 first.</summary>
    public bool CenterInputSample { get; init; }

    /// <summary><c>flip_sin_to_cos</c>: the timestep embedding is [cos, sin] instead of [sin, cos].</summary>
    public bool FlipSinToCos { get; init; } = true;

    /// <summary><c>freq_shift</c>: the frequencies' exponent is divided by half_dim - freq_shift.</summary>
    public double FreqShift { get; init; }

    /// <summary><c>down_block_types</c>.</summary>
    public IReadOnlyList<string> DownBlocks { get; init; } = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"];

    /// <summary><c>up_block_types</c>.</summary>
    public IReadOnlyList<string> UpBlocks { get; init; } = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"];

    /// <summary><c>block_out_channels</c>.</summary>
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [320, 640, 1280, 1280];

    /// <summary><c>layers_per_block</c>, per down block (up blocks have one resnet more, in reverse order).</summary>
    public IReadOnlyList<int> LayersPerBlock { get; init; } = [2, 2, 2, 2];

    /// <summary><c>downsample_padding</c> of the down blocks' stride-2 convolutions.</summary>
    public int DownsamplePadding { get; init; } = 1;

    /// <summary><c>mid_block_scale_factor</c>: the mid block's resnets divide their output by it.</summary>
    public double MidBlockScaleFactor { get; init; } = 1;

    /// <summary><c>norm_num_groups</c>.</summary>
    public int NormNumGroups { get; init; } = 32;

    /// <summary><c>norm_eps</c>: epsilon of the resnets' and of <c>conv_norm_out</c>'s GroupNorm.</summary>
    public double NormEps { get; init; } = 1e-5;

    /// <summary><c>cross_attention_dim</c>, per down block (width of the text embeddings).</summary>
    public IReadOnlyList<int> CrossAttentionDim { get; init; } = [1280, 1280, 1280, 1280];

    /// <summary><c>transformer_layers_per_block</c>, per down block.</summary>
    public IReadOnlyList<int> TransformerLayersPerBlock { get; init; } = [1, 1, 1, 1];

    /// <summary>Heads per down block's transformers (<c>attention_head_dim</c>, diffusers' historic name).</summary>
    public IReadOnlyList<int> AttentionHeads { get; init; } = [8, 8, 8, 8];

    /// <summary><c>use_linear_projection</c>: proj_in/proj_out are Linear [C, C] (SD 2.x) instead of 1x1 convolutions.</summary>
    public bool UseLinearProjection { get; init; }

    /// <summary><c>upcast_attention</c> (SD 2.1): read, and without effect here as in diffusers' default (SDPA) attention processor.</summary>
    public bool UpcastAttention { get; init; }

    /// <summary><c>conv_in_kernel</c>.</summary>
    public int ConvInKernel { get; init; } = 3;

    /// <summary><c>conv_out_kernel</c>.</summary>
    public int ConvOutKernel { get; init; } = 3;

    /// <summary><c>time_embedding_dim</c>: width of the time embedding (default 4 x block_out_channels[0]).</summary>
    public int TimeEmbeddingDim => BlockOutChannels[0] * 4;

    /// <summary>
    /// Reads <c>unet/config.json</c>. Like <c>StableDiffusionPipeline</c>, a config written by diffusers before 0.9.0
    /// with a sample_size under 64 gets 64.
    /// </summary>
    /// <exception cref="InvalidInputException">One line naming the file and the key at fault.</exception>
    public static UNet2DConditionConfig FromJson(string path) => Read(ConfigJson.Load(path));

    internal static UNet2DConditionConfig Read(ConfigJson json)
    {
        if (json.String("_class_name") is { } name && name != "UNet2DConditionModel")
        {
            throw json.Unsupported("_class_name", "UNet2DConditionModel");
        }

        RequireAbsent(json, "class_embed_type", "addition_embed_type", "encoder_hid_dim", "encoder_hid_dim_type", "time_embedding_dim",
            "time_embedding_act_fn", "timestep_post_act", "time_cond_proj_dim", "projection_class_embeddings_input_dim", "cross_attention_norm",
            "num_class_embeds", "addition_time_embed_dim", "reverse_transformer_layers_per_block");
        RequireValue(json, "act_fn", "silu");
        RequireValue(json, "time_embedding_type", "positional");
        RequireValue(json, "resnet_time_scale_shift", "default");
        RequireValue(json, "attention_type", "default");
        RequireValue(json, "mid_block_type", "UNetMidBlock2DCrossAttn");
        if (json.Json.ContainsKey("mid_block_type") && json.String("mid_block_type") is null)
        {
            throw json.Unsupported("mid_block_type", "UNetMidBlock2DCrossAttn (null: no middle block)");
        }

        foreach (var key in new[] { "only_cross_attention", "dual_cross_attention", "resnet_skip_time_act", "class_embeddings_concat", "mid_block_only_cross_attention" })
        {
            if (json.Bool(key) is true)
            {
                throw json.Unsupported(key, "false, as in Stable Diffusion 1.x/2.x");
            }
        }

        if (json.Has("num_attention_heads"))
        {
            // diffusers itself refuses it for this class: attention_head_dim is the number of heads.
            throw json.Unsupported("num_attention_heads", "null: UNet2DConditionModel reads the number of heads from attention_head_dim");
        }

        var defaults = new UNet2DConditionConfig();
        var down = json.Strings("down_block_types") ?? defaults.DownBlocks;
        var up = json.Strings("up_block_types") ?? defaults.UpBlocks;
        var blocks = down.Count;
        IReadOnlyList<int> PerBlock(string key, IReadOnlyList<int> fallback)
        {
            var values = json.IntOrList(key) ?? [fallback[0]];
            if (values.Count == 1)
            {
                return Enumerable.Repeat(values[0], blocks).ToList();
            }

            return values.Count == blocks
                ? values
                : throw new InvalidInputException($"{json.Source}: {key} has {values.Count} values for {blocks} down blocks");
        }

        var config = new UNet2DConditionConfig
        {
            SampleSize = json.Int("sample_size") ?? defaults.SampleSize,
            InChannels = json.Int("in_channels") ?? defaults.InChannels,
            OutChannels = json.Int("out_channels") ?? defaults.OutChannels,
            CenterInputSample = json.Bool("center_input_sample") ?? false,
            FlipSinToCos = json.Bool("flip_sin_to_cos") ?? true,
            FreqShift = json.Double("freq_shift") ?? 0,
            DownBlocks = down,
            UpBlocks = up,
            BlockOutChannels = json.IntOrList("block_out_channels") ?? defaults.BlockOutChannels,
            LayersPerBlock = PerBlock("layers_per_block", defaults.LayersPerBlock),
            DownsamplePadding = json.Int("downsample_padding") ?? 1,
            MidBlockScaleFactor = json.Double("mid_block_scale_factor") ?? 1,
            NormNumGroups = json.Int("norm_num_groups") ?? defaults.NormNumGroups,
            NormEps = json.Double("norm_eps") ?? defaults.NormEps,
            CrossAttentionDim = PerBlock("cross_attention_dim", defaults.CrossAttentionDim),
            TransformerLayersPerBlock = PerBlock("transformer_layers_per_block", defaults.TransformerLayersPerBlock),
            AttentionHeads = PerBlock("attention_head_dim", defaults.AttentionHeads),
            UseLinearProjection = json.Bool("use_linear_projection") ?? false,
            UpcastAttention = json.Bool("upcast_attention") ?? false,
            ConvInKernel = json.Int("conv_in_kernel") ?? 3,
            ConvOutKernel = json.Int("conv_out_kernel") ?? 3,
        };
        if (!json.Has("norm_num_groups") && json.Json.ContainsKey("norm_num_groups"))
        {
            throw json.Unsupported("norm_num_groups", "a number of groups (the UNet's GroupNorms)");
        }

        if (json.String("_diffusers_version") is { } version && Version.TryParse(version.Split(".dev")[0], out var parsed)
            && parsed < new Version(0, 9, 0) && config.SampleSize < 64)
        {
            config = config with { SampleSize = 64 };
        }

        return config.Validate(json.Source);
    }

    /// <summary>Fails with one line naming the first impossible value; returns the config itself.</summary>
    /// <exception cref="InvalidInputException">Unknown block types, mismatched lengths, channels not divisible by groups or heads, ...</exception>
    public UNet2DConditionConfig Validate(string source)
    {
        var blocks = DownBlocks.Count;
        if (blocks == 0 || UpBlocks.Count != blocks || BlockOutChannels.Count != blocks)
        {
            throw new InvalidInputException(
                $"{source}: down_block_types ({blocks}), up_block_types ({UpBlocks.Count}) and block_out_channels ({BlockOutChannels.Count}) must have the same length");
        }

        foreach (var type in DownBlocks.Where(t => !DownBlockTypes.Contains(t)))
        {
            throw new InvalidInputException($"{source}: down block type {type} is not supported ({string.Join(", ", DownBlockTypes)})");
        }

        foreach (var type in UpBlocks.Where(t => !UpBlockTypes.Contains(t)))
        {
            throw new InvalidInputException($"{source}: up block type {type} is not supported ({string.Join(", ", UpBlockTypes)})");
        }

        void Positive(string key, double value)
        {
            if (!(value > 0))
            {
                throw new InvalidInputException($"{source}: {key} must be positive, got {value.ToString(CultureInfo.InvariantCulture)}");
            }
        }

        Positive("sample_size", SampleSize);
        Positive("in_channels", InChannels);
        Positive("out_channels", OutChannels);
        Positive("norm_num_groups", NormNumGroups);
        Positive("norm_eps", NormEps);
        Positive("mid_block_scale_factor", MidBlockScaleFactor);
        Positive("conv_in_kernel", ConvInKernel);
        Positive("conv_out_kernel", ConvOutKernel);
        for (var i = 0; i < blocks; i++)
        {
            Positive("block_out_channels", BlockOutChannels[i]);
            Positive("layers_per_block", LayersPerBlock[i]);
            Positive("cross_attention_dim", CrossAttentionDim[i]);
            Positive("transformer_layers_per_block", TransformerLayersPerBlock[i]);
            Positive("attention_head_dim", AttentionHeads[i]);
            if (BlockOutChannels[i] % NormNumGroups != 0)
            {
                throw new InvalidInputException($"{source}: block_out_channels {BlockOutChannels[i]} is not a multiple of norm_num_groups {NormNumGroups}");
            }

            if (BlockOutChannels[i] % AttentionHeads[i] != 0)
            {
                throw new InvalidInputException($"{source}: block_out_channels {BlockOutChannels[i]} is not a multiple of its attention_head_dim (heads)");
            }
        }

        if (ConvInKernel % 2 == 0 || ConvOutKernel % 2 == 0)
        {
            throw new InvalidInputException($"{source}: conv_in_kernel and conv_out_kernel must be odd, got {ConvInKernel} and {ConvOutKernel}");
        }

        return this;
    }

    private static void RequireAbsent(ConfigJson json, params string[] keys)
    {
        foreach (var key in keys.Where(json.Has))
        {
            throw json.Unsupported(key, "null, as in Stable Diffusion 1.x/2.x");
        }
    }

    private static void RequireValue(ConfigJson json, string key, string value)
    {
        if (json.String(key) is { } actual && actual != value)
        {
            throw json.Unsupported(key, value);
        }
    }
}
