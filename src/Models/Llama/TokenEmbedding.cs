using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// A token embedding table (<c>nn.Embedding</c> without padding_idx or max_norm) whose weight is allocated on the
/// target device and dtype but not initialised: a checkpoint or the seeded initialisation fills it.
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    /// <param name="vocabSize">Rows.</param>
    /// <param name="size">Width of a row.</param>
    /// <param name="device">Where the weight is allocated.</param>
    /// <param name="dtype">The weight's dtype.</param>
    public TokenEmbedding(long vocabSize, long size, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(empty([vocabSize, size], dtype, device), requires_grad: false);
        RegisterComponents();
    }

    /// <summary>The table, [vocab, size].</summary>
    public Tensor Weight => weight;

    /// <param name="input">[...] int64 ids in [0, vocab).</param>
    /// <returns>[..., size] rows of the table.</returns>
    public override Tensor forward(Tensor input) =>
        weight.index_select(0, input.reshape(-1)).view([.. input.shape, weight.shape[1]]);
}
