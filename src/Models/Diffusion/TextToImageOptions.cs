using System.Globalization;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// How a text-to-image row is generated, with <c>StableDiffusionPipeline.__call__</c>'s defaults: 50 steps, guidance
/// 7.5 (classifier-free guidance only above 1), the folder's scheduler, height and width
/// <c>unet.sample_size x vae_scale_factor</c>. The initial latents of a row not given its own are drawn from a generator
/// seeded by <paramref name="Seed"/> and the row's index in its job, so a prompt gives the same image alone, in any batch,
/// on any device or node.
/// </summary>
/// <param name="NumInferenceSteps">Denoising steps (<c>num_inference_steps</c>).</param>
/// <param name="GuidanceScale"><c>guidance_scale</c>: 1 or less runs the UNet once per step without the negative prompt.</param>
/// <param name="Scheduler"><c>pndm</c>, <c>ddim</c> or <c>euler</c> (each <c>X.from_config(pipeline scheduler config)</c>); null: the folder's.</param>
/// <param name="Height">Image height in pixels, a multiple of the VAE factor; null: the default.</param>
/// <param name="Width">Image width in pixels, a multiple of the VAE factor; null: the default.</param>
/// <param name="Seed">Seed of the rows' initial latents.</param>
public sealed record TextToImageOptions(int NumInferenceSteps = 50, double GuidanceScale = 7.5, string? Scheduler = null, int? Height = null, int? Width = null, long Seed = 0)
{
    /// <summary>The pipeline's defaults.</summary>
    public static TextToImageOptions Default { get; } = new();

    /// <summary>Whether the UNet runs with classifier-free guidance (a negative and a positive row per prompt).</summary>
    public bool DoClassifierFreeGuidance => GuidanceScale > 1.0;

    /// <summary>Checks what can be checked without the model: steps, guidance, scheduler name, sizes; returns itself.</summary>
    /// <exception cref="InvalidInputException">One line naming the option.</exception>
    public TextToImageOptions Validate()
    {
        if (NumInferenceSteps < 1)
        {
            throw new InvalidInputException($"--num-inference-steps must be at least 1, got {NumInferenceSteps}");
        }

        if (!double.IsFinite(GuidanceScale) || GuidanceScale < 0)
        {
            throw new InvalidInputException($"--guidance-scale must be a finite number >= 0, got {GuidanceScale.ToString(CultureInfo.InvariantCulture)}");
        }

        if (Scheduler is not null && !SchedulerConfig.ClassNames.ContainsKey(Scheduler))
        {
            throw new InvalidInputException($"unknown scheduler '{Scheduler}': use {string.Join(", ", SchedulerConfig.ClassNames.Keys)}");
        }

        foreach (var (name, value) in new[] { ("--height", Height), ("--width", Width) })
        {
            if (value is <= 0 or > 16384)
            {
                throw new InvalidInputException($"{name} must be from 1 to 16384 pixels, got {value}");
            }
        }

        return this;
    }

    /// <summary>A short description for summaries: <c>50 steps, pndm, guidance 7.5, 512x512</c>.</summary>
    public string Describe(int height, int width, string scheduler) =>
        string.Create(CultureInfo.InvariantCulture, $"{NumInferenceSteps} steps, {scheduler}, guidance {GuidanceScale}, {width}x{height}");
}
