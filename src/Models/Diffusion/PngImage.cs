using DistributedInference.Models.Loading;
using SkiaSharp;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>PNG files of generated images, through SkiaSharp (its native assets need no system libraries on Linux).</summary>
public static class PngImage
{
    /// <summary>Writes one image as an 8-bit RGB PNG, whole or not at all.</summary>
    /// <param name="image">uint8 [H, W, 3] on the CPU (one row of a pipeline's output); not disposed.</param>
    /// <exception cref="ArgumentException">Not a uint8 [H, W, 3] tensor.</exception>
    public static void Save(Tensor image, string path) => AtomicFile.Write(path, stream => stream.Write(Encode(image)));

    /// <summary>The PNG bytes of <paramref name="image"/> (uint8 [H, W, 3]).</summary>
    public static byte[] Encode(Tensor image)
    {
        if (image.dtype != ScalarType.Byte || image.dim() != 3 || image.shape[2] != 3)
        {
            throw new ArgumentException($"an image is uint8 [H, W, 3], got {image.dtype} [{string.Join(", ", image.shape)}]", nameof(image));
        }

        var (height, width) = ((int)image.shape[0], (int)image.shape[1]);
        using var rgba = cat([image.cpu(), full([height, width, 1], (byte)255, ScalarType.Byte)], 2).contiguous();
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var pixels = rgba.data<byte>().ToArray();
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Decodes a PNG back to uint8 [H, W, 3] (alpha dropped): for checks and image-to-image inputs.</summary>
    /// <exception cref="InvalidInputException">Not an image SkiaSharp can decode.</exception>
    public static Tensor Load(string path)
    {
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidInputException($"{path}: not an image");
        using var bitmap = decoded.Copy(SKColorType.Rgba8888);
        var pixels = new byte[bitmap.Width * bitmap.Height * 4];
        System.Runtime.InteropServices.Marshal.Copy(bitmap.GetPixels(), pixels, 0, pixels.Length);
        using var rgba = tensor(pixels, [bitmap.Height, bitmap.Width, 4]);
        return rgba.narrow(2, 0, 3).contiguous();
    }
}
