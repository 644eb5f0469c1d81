namespace DistributedInference.Models.Llama;

/// <summary>
/// How rotary position embeddings are set up, as transformers' <c>rope_parameters</c> (v5) or <c>rope_theta</c> +
/// <c>rope_scaling</c> (v4) name it. Only <c>default</c> and <c>llama3</c> are supported.
/// </summary>
/// <param name="Type"><c>default</c> or <c>llama3</c>.</param>
/// <param name="Theta">The base of the inverse frequencies (<c>rope_theta</c>).</param>
/// <param name="Factor">llama3: how much the low frequencies are stretched (<c>factor</c>).</param>
/// <param name="LowFreqFactor">llama3: <c>low_freq_factor</c>.</param>
/// <param name="HighFreqFactor">llama3: <c>high_freq_factor</c>.</param>
/// <param name="OriginalMaxPositions">llama3: <c>original_max_position_embeddings</c>.</param>
public sealed record RopeParameters(
    string Type,
    double Theta,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositions = 8192)
{
    /// <summary>The rope types this implementation computes.</summary>
    public static IReadOnlyList<string> SupportedTypes { get; } = ["default", "llama3"];

    /// <summary>Plain RoPE with the given base.</summary>
    public static RopeParameters Default(double theta) => new("default", theta);

    /// <summary>Llama 3's frequency-dependent scaling (<c>_compute_llama3_parameters</c>).</summary>
    public static RopeParameters Llama3(double theta, double factor, double low, double high, int originalMaxPositions) =>
        new("llama3", theta, factor, low, high, originalMaxPositions);

    /// <summary>
    /// The inverse frequencies, <c>head_dim / 2</c> of them, in double precision: <c>1 / theta^(2i / head_dim)</c>,
    /// then for llama3 wavelengths above <c>original / low_freq_factor</c> divided by <c>factor</c>, those below
    /// <c>original / high_freq_factor</c> kept, and those between interpolated smoothly (transformers'
    /// <c>modeling_rope_utils</c>).
    /// </summary>
    public double[] InverseFrequencies(int headDim)
    {
        var result = new double[headDim / 2];
        for (var i = 0; i < result.Length; i++)
        {
            // transformers computes theta ** (2i / dim) in float32; the float32 value of the exponent is kept here.
            var exponent = (double)(float)(2.0 * i / headDim);
            result[i] = 1.0 / Math.Pow(Theta, exponent);
        }

        if (Type != "llama3")
        {
            return result;
        }

        var lowFreqWavelength = OriginalMaxPositions / LowFreqFactor;
        var highFreqWavelength = OriginalMaxPositions / HighFreqFactor;
        for (var i = 0; i < result.Length; i++)
        {
            var wavelength = 2 * Math.PI / result[i];
            if (wavelength > lowFreqWavelength)
            {
                result[i] /= Factor;
            }
            else if (wavelength >= highFreqWavelength)
            {
                var smooth = ((OriginalMaxPositions / wavelength) - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                result[i] = ((1 - smooth) * result[i] / Factor) + (smooth * result[i]);
            }
        }

        return result;
    }
}
