using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Fills a pipeline folder that has its configs (model_index.json, component config.json files, tokenizer, scheduler)
/// with seeded random weights in diffusers' layout (<c>text_encoder/model.safetensors</c>,
/// <c>unet/diffusion_pytorch_model.safetensors</c>, <c>vae/diffusion_pytorch_model.safetensors</c>), one tensor at a
/// time, with <see cref="DiffusionWeights.InitializeRandom"/>'s per-tensor rule: the folder loaded in the dtype it was
/// written in computes what a built-in of the same configs and seed computes. To try configurations no checkpoint exists
/// for (a second, self-made pipeline for tests) without a download.
/// </summary>
public static class StableDiffusionRandomWeights
{
    /// <param name="folder">A pipeline folder with configs and no weights (existing weight files are replaced).</param>
    /// <param name="seed">Seed of the values.</param>
    /// <param name="dtype">The stored dtype (float32, float16 or bfloat16).</param>
    /// <exception cref="InvalidInputException">The folder's configs are unusable (one line), or another dtype.</exception>
    public static void Write(string folder, long seed, ScalarType dtype = ScalarType.Float32)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
        {
            throw new InvalidInputException($"--dtype {dtype}: random weights are float32, float16 or bfloat16");
        }

        var source = StableDiffusionSource.Resolve(folder);
        var meta = new Device(DeviceType.META);
        foreach (var (component, file, module) in new (string, string, nn.Module)[]
        {
            ("text_encoder", "model.safetensors", new ClipTextModel(source.TextEncoder, meta)),
            ("unet", "diffusion_pytorch_model.safetensors", new UNet2DConditionModel(source.Unet, meta)),
            ("vae", "diffusion_pytorch_model.safetensors", new AutoencoderKL(source.Vae, meta)),
        })
        {
            using (module)
            {
                var tensors = module.named_parameters().Select(p => (p.name, dtype, p.parameter.shape)).ToList();
                SafeTensorsFile.WriteEach(
                    Path.Combine(folder, component, file), tensors,
                    (name, tensor) => DiffusionWeights.InitializeRandom(name, tensor, component, seed),
                    new Dictionary<string, string> { ["format"] = "pt" });
            }
        }
    }
}
