using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests;

/// <summary>The Hugging Face gpt2-tiny reference fixture (tests/fixtures, a copy of shared/fixtures).</summary>
public static class Fixtures
{
    public static string Path(params string[] parts) => System.IO.Path.Combine([AppContext.BaseDirectory, "fixtures", "gpt2-tiny", .. parts]);

    public static Tensor Expected(string name) => SafeTensorsFile.Open(Path("expected.safetensors")).Read(name);

    /// <summary>
    /// A copy of the model folder <paramref name="source"/> at <paramref name="destination"/> (its name is the copy's
    /// name); with <paramref name="changeOneWeight"/>, the last float32 of its weights is changed and nothing else: the
    /// same config, header and tensor layout, other weights.
    /// </summary>
    public static string CopyModel(string source, string destination, bool changeOneWeight)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, System.IO.Path.Combine(destination, System.IO.Path.GetFileName(file)));
        }

        if (changeOneWeight)
        {
            using var weights = File.Open(System.IO.Path.Combine(destination, "model.safetensors"), FileMode.Open, FileAccess.ReadWrite);
            var last = new byte[4];
            weights.Seek(-4, SeekOrigin.End);
            weights.ReadExactly(last);
            weights.Seek(-4, SeekOrigin.End);
            weights.Write(BitConverter.GetBytes(BitConverter.ToSingle(last) + 0.5f));
        }

        return destination;
    }

    public static double MaxAbsDiff(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        return (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().ToDouble();
    }
}
