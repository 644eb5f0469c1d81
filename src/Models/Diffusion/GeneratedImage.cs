using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// One generated image (what diffusers' <c>pipe(prompt).images[i]</c> is, a PIL image there): uint8 pixels
/// [H, W, 3] on the CPU, saved as PNG by <see cref="Save"/>. Owns its tensor.
/// </summary>
public sealed class GeneratedImage : IDisposable
{
    public GeneratedImage(Tensor pixels)
    {
        Pixels = pixels;
    }

    /// <summary>uint8 [H, W, 3], RGB.</summary>
    public Tensor Pixels { get; }

    public int Height => (int)Pixels.shape[0];

    public int Width => (int)Pixels.shape[1];

    /// <summary>Writes the image as a PNG file (whole or not at all).</summary>
    public void Save(string path) => PngImage.Save(Pixels, path);

    public void Dispose() => Pixels.Dispose();
}
