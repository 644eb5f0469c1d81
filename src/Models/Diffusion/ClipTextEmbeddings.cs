using DistributedInference.Models.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>CLIP's text embeddings (transformers' <c>CLIPTextEmbeddings</c>): token embedding plus the embedding of positions 0..T-1.</summary>
public sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly TokenEmbedding token_embedding;
    private readonly TokenEmbedding position_embedding;

    public ClipTextEmbeddings(ClipTextConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(ClipTextEmbeddings))
    {
        token_embedding = new TokenEmbedding(config.VocabSize, config.HiddenSize, device, dtype);
        position_embedding = new TokenEmbedding(config.MaxPositions, config.HiddenSize, device, dtype);
        RegisterComponents();
    }

    /// <param name="input">[B, T] int64 ids, T at most max_position_embeddings.</param>
    /// <returns>[B, T, hidden].</returns>
    public override Tensor forward(Tensor input)
    {
        using var positions = arange(input.shape[1], ScalarType.Int64, input.device).unsqueeze(0);
        return token_embedding.forward(input) + position_embedding.forward(positions);
    }
}
