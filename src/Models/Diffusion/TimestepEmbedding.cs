using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// The UNet's time embedding: diffusers' <c>Timesteps</c> (sinusoidal, <see cref="Sinusoidal"/>) and
/// <c>TimestepEmbedding</c> (<c>linear_1</c>, SiLU, <c>linear_2</c>).
/// </summary>
public sealed class TimestepEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Linear linear_1;
    private readonly Linear linear_2;

    public TimestepEmbedding(long inChannels, long timeEmbeddingDim, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(TimestepEmbedding))
    {
        linear_1 = Layers.Linear(inChannels, timeEmbeddingDim, bias: true, device, dtype);
        linear_2 = Layers.Linear(timeEmbeddingDim, timeEmbeddingDim, bias: true, device, dtype);
        RegisterComponents();
    }

    /// <param name="input">[B, in] sinusoidal embedding.</param>
    /// <returns>[B, time_embedding_dim].</returns>
    public override Tensor forward(Tensor input) => linear_2.forward(nn.functional.silu(linear_1.forward(input)));

    /// <summary>
    /// diffusers' <c>get_timestep_embedding</c> (max period 10000, scale 1): frequencies
    /// <c>exp(-ln(10000) * i / (half - freq_shift))</c> for i &lt; half, in float32; [sin, cos] of t x frequency, or
    /// [cos, sin] with flip_sin_to_cos; a zero column appended for an odd width. Fractional timesteps (Euler) are not rounded.
    /// </summary>
    /// <param name="timesteps">[B], any real dtype; converted to float32.</param>
    /// <param name="width">Embedding width (block_out_channels[0]).</param>
    /// <returns>[B, width] float32.</returns>
    public static Tensor Sinusoidal(Tensor timesteps, int width, bool flipSinToCos, double freqShift)
    {
        var half = width / 2;
        var exponent = arange(0, half, ScalarType.Float32, timesteps.device) * -Math.Log(10000.0);
        var frequencies = (exponent / (half - freqShift)).exp();
        var angles = timesteps.to(ScalarType.Float32).unsqueeze(1) * frequencies.unsqueeze(0);
        var embedding = flipSinToCos ? cat([angles.cos(), angles.sin()], -1) : cat([angles.sin(), angles.cos()], -1);
        return width % 2 == 1 ? nn.functional.pad(embedding, [0, 1, 0, 0]) : embedding;
    }
}
