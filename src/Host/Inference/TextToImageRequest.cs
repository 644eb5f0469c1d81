namespace DistributedInference.Host.Inference;

/// <summary>
/// What <c>di infer --task text-to-image</c> was given beyond the common options, before validation: the negative prompts
/// (one for every prompt or one per prompt; default ""), the pipeline's options, initial latents (<c>--latents</c>) and the folder for PNGs (<c>--output-dir</c>).
/// </summary>
public sealed record TextToImageRequest(
    IReadOnlyList<string>? NegativePrompt = null,
    int NumInferenceSteps = 50,
    double GuidanceScale = 7.5,
    string? Scheduler = null,
    int? Height = null,
    int? Width = null,
    string? LatentsPath = null,
    string? OutputDir = null);
