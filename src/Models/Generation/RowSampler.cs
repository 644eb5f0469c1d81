using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// Draws one token per row from warped scores with a generator per row, seeded by the row's own seed
/// (<see cref="RowSeeds"/>): a row draws the same numbers alone, in any batch, and on any device. Each step takes one uniform number per
/// row from its CPU generator and picks the token where the row's cumulative probability passes it (inverse-CDF
/// sampling, the distribution <c>torch.multinomial</c> draws from), so only B numbers cross to the device per step.
/// </summary>
public sealed class RowSampler : IDisposable
{
    private readonly Generator[] _generators;

    /// <param name="rowSeeds">Each row's seed, [B] (see <see cref="RowSeeds"/>).</param>
    public RowSampler(IReadOnlyList<long> rowSeeds)
    {
        _generators = rowSeeds.Select(seed => new Generator(unchecked((ulong)seed), CPU)).ToArray();
    }

    /// <summary>Rows sampled.</summary>
    public int Rows => _generators.Length;

    /// <param name="scores">[B, vocab] float32 warped scores (-inf = never drawn), any device.</param>
    /// <returns>[B] int64 token ids on the scores' device, in the caller's dispose scope.</returns>
    public Tensor Sample(Tensor scores)
    {
        if (scores.shape[0] != _generators.Length)
        {
            throw new ArgumentException($"scores have {scores.shape[0]} rows, the sampler {_generators.Length}", nameof(scores));
        }

        var vocab = scores.shape[^1];
        var cumulative = scores.to(ScalarType.Float32).softmax(-1).to(ScalarType.Float64).cumsum(-1);
        var uniform = new double[_generators.Length];
        for (var row = 0; row < uniform.Length; row++)
        {
            using var draw = rand(1, ScalarType.Float64, generator: _generators[row]);
            uniform[row] = draw.ToDouble();
        }

        var threshold = tensor(uniform, device: scores.device).unsqueeze(1) * cumulative.narrow(-1, vocab - 1, 1);
        return cumulative.le(threshold).sum(-1).clamp_max(vocab - 1).to(ScalarType.Int64);
    }

    /// <summary>Releases the generators.</summary>
    public void Dispose()
    {
        foreach (var generator in _generators)
        {
            generator.Dispose();
        }
    }
}
