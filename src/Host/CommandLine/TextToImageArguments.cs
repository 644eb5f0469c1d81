using System.CommandLine;
using DistributedInference.Host.Inference;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// The options of <c>di infer --task text-to-image</c>, in diffusers' spelling and with <c>StableDiffusionPipeline</c>'s
/// defaults (50 steps, guidance 7.5, the folder's scheduler, <c>unet.sample_size x vae_scale_factor</c> pixels).
/// </summary>
public sealed class TextToImageArguments
{
    private readonly Option<string[]> _negativePrompt = new("--negative-prompt")
    {
        Description = "text-to-image: what to steer away from (with --guidance-scale above 1): one text for every prompt, or one per prompt",
        AllowMultipleArgumentsPerToken = true,
        Arity = ArgumentArity.OneOrMore,
    };
    private readonly Option<int> _steps = new("--num-inference-steps") { Description = "text-to-image: denoising steps", DefaultValueFactory = _ => 50 };
    private readonly Option<double> _guidance = new("--guidance-scale") { Description = "text-to-image: classifier-free guidance scale (1 or less: none)", DefaultValueFactory = _ => 7.5 };
    private readonly Option<string?> _scheduler = new("--scheduler") { Description = "text-to-image: pndm | ddim | euler, configured from the folder's scheduler (default: the folder's own)" };
    private readonly Option<int?> _height = new("--height") { Description = "text-to-image: image height in pixels, a multiple of the VAE's factor (8 for Stable Diffusion)" };
    private readonly Option<int?> _width = new("--width") { Description = "text-to-image: image width in pixels, a multiple of the VAE's factor" };
    private readonly Option<string?> _latents = new("--latents") { Description = "text-to-image: safetensors file with latents float [B,4,H/8,W/8], the initial noise of each prompt (default: drawn per prompt from --seed)" };
    private readonly Option<string?> _outputDir = new("--output-dir") { Description = "text-to-image: folder for image_{index}.png per prompt and index.jsonl" };

    public IEnumerable<Option> Options => [_negativePrompt, _steps, _guidance, _scheduler, _height, _width, _latents, _outputDir];

    public TextToImageRequest Read(ParseResult result) => new(
        result.GetValue(_negativePrompt),
        result.GetValue(_steps),
        result.GetValue(_guidance),
        result.GetValue(_scheduler),
        result.GetValue(_height),
        result.GetValue(_width),
        result.GetValue(_latents),
        result.GetValue(_outputDir));
}
