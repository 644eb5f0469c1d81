using System.Globalization;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Hyper-parameters of a Stable Diffusion VAE (diffusers' <c>AutoencoderKL</c>), read from <c>vae/config.json</c> as
/// <c>from_pretrained</c> reads it (keys left out take the class defaults: <c>scaling_factor</c> 0.18215).
/// </summary>
public sealed record AutoencoderKLConfig
{
    /// <summary><c>in_channels</c>: image channels.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary><c>out_channels</c>: image channels decoded.</summary>
    public int OutChannels { get; init; } = 3;

    /// <summary><c>block_out_channels</c>; the VAE scales images by 2^(blocks - 1).</summary>
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];

    /// <summary><c>layers_per_block</c>: resnets per encoder block (decoder blocks have one more).</summary>
    public int LayersPerBlock { get; init; } = 1;

    /// <summary><c>latent_channels</c>.</summary>
    public int LatentChannels { get; init; } = 4;

    /// <summary><c>norm_num_groups</c>.</summary>
    public int NormNumGroups { get; init; } = 32;

    /// <summary><c>sample_size</c>.</summary>
    public int SampleSize { get; init; } = 32;

    /// <summary><c>scaling_factor</c>: latents are divided by it before decoding.</summary>
    public double ScalingFactor { get; init; } = 0.18215;

    /// <summary><c>use_quant_conv</c>.</summary>
    public bool UseQuantConv { get; init; } = true;

    /// <summary><c>use_post_quant_conv</c>.</summary>
    public bool UsePostQuantConv { get; init; } = true;

    /// <summary><c>mid_block_add_attention</c>.</summary>
    public bool MidBlockAddAttention { get; init; } = true;

    /// <summary><c>2 ** (len(block_out_channels) - 1)</c>: how much larger the image is than its latents (8 for SD).</summary>
    public int ScaleFactor => 1 << (BlockOutChannels.Count - 1);

    /// <exception cref="InvalidInputException">One line naming the file and the key at fault.</exception>
    public static AutoencoderKLConfig FromJson(string path) => Read(ConfigJson.Load(path));

    internal static AutoencoderKLConfig Read(ConfigJson json)
    {
        if (json.String("_class_name") is { } name && name != "AutoencoderKL")
        {
            throw json.Unsupported("_class_name", "AutoencoderKL");
        }

        if (json.String("act_fn") is { } act && act != "silu")
        {
            throw json.Unsupported("act_fn", "silu");
        }

        foreach (var key in new[] { "shift_factor", "latents_mean", "latents_std" })
        {
            if (json.Has(key))
            {
                throw json.Unsupported(key, "null, as in Stable Diffusion 1.x/2.x");
            }
        }

        var defaults = new AutoencoderKLConfig();
        var channels = json.IntOrList("block_out_channels") ?? defaults.BlockOutChannels;
        var downTypes = json.Strings("down_block_types") ?? Enumerable.Repeat("DownEncoderBlock2D", channels.Count).ToList();
        var upTypes = json.Strings("up_block_types") ?? Enumerable.Repeat("UpDecoderBlock2D", channels.Count).ToList();
        if (downTypes.Count != channels.Count || upTypes.Count != channels.Count)
        {
            throw new InvalidInputException(
                $"{json.Source}: down_block_types ({downTypes.Count}), up_block_types ({upTypes.Count}) and block_out_channels ({channels.Count}) must have the same length");
        }

        if (downTypes.FirstOrDefault(t => t != "DownEncoderBlock2D") is { } down)
        {
            throw new InvalidInputException($"{json.Source}: down block type {down} is not supported (DownEncoderBlock2D)");
        }

        if (upTypes.FirstOrDefault(t => t != "UpDecoderBlock2D") is { } up)
        {
            throw new InvalidInputException($"{json.Source}: up block type {up} is not supported (UpDecoderBlock2D)");
        }

        return new AutoencoderKLConfig
        {
            InChannels = json.Int("in_channels") ?? defaults.InChannels,
            OutChannels = json.Int("out_channels") ?? defaults.OutChannels,
            BlockOutChannels = channels,
            LayersPerBlock = json.Int("layers_per_block") ?? defaults.LayersPerBlock,
            LatentChannels = json.Int("latent_channels") ?? defaults.LatentChannels,
            NormNumGroups = json.Int("norm_num_groups") ?? defaults.NormNumGroups,
            SampleSize = json.Int("sample_size") ?? defaults.SampleSize,
            ScalingFactor = json.Double("scaling_factor") ?? defaults.ScalingFactor,
            UseQuantConv = json.Bool("use_quant_conv") ?? true,
            UsePostQuantConv = json.Bool("use_post_quant_conv") ?? true,
            MidBlockAddAttention = json.Bool("mid_block_add_attention") ?? true,
        }.Validate(json.Source);
    }

    /// <summary>Fails with one line naming the first impossible value; returns the config itself.</summary>
    /// <exception cref="InvalidInputException">A non-positive size, or channels not divisible by the groups.</exception>
    public AutoencoderKLConfig Validate(string source)
    {
        void Positive(string key, double value)
        {
            if (!(value > 0))
            {
                throw new InvalidInputException($"{source}: {key} must be positive, got {value.ToString(CultureInfo.InvariantCulture)}");
            }
        }

        Positive("in_channels", InChannels);
        Positive("out_channels", OutChannels);
        Positive("layers_per_block", LayersPerBlock);
        Positive("latent_channels", LatentChannels);
        Positive("norm_num_groups", NormNumGroups);
        Positive("scaling_factor", ScalingFactor);
        if (BlockOutChannels.Count == 0)
        {
            throw new InvalidInputException($"{source}: block_out_channels is empty");
        }

        foreach (var channels in BlockOutChannels)
        {
            Positive("block_out_channels", channels);
            if (channels % NormNumGroups != 0)
            {
                throw new InvalidInputException($"{source}: block_out_channels {channels} is not a multiple of norm_num_groups {NormNumGroups}");
            }
        }

        return this;
    }
}
