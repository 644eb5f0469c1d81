using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>Attention</c> with its default processor (<c>AttnProcessor2_0</c>: scaled dot-product attention,
/// scale head_dim^-0.5): <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c> (<c>to_out.1</c> is dropout). Self-attention
/// when no context is given, cross-attention on the text embeddings otherwise. The VAE's mid-block form (one head,
/// biased projections) adds <c>group_norm</c> before the projections and the residual after, on [B, C, H, W] input;
/// checkpoints of diffusers before 0.14 name those tensors <c>query</c>, <c>key</c>, <c>value</c>, <c>proj_attn</c>
/// (renamed on load as diffusers does: <see cref="DiffusionWeights.LegacyAttentionName"/>).
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    private readonly GroupNormLayer? group_norm;
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
    private readonly int _heads;
    private readonly int _headDim;

    /// <param name="queryDim">Width of the input (and output).</param>
    /// <param name="contextDim">Width of the context (cross-attention), or null for self-attention.</param>
    /// <param name="heads">Number of heads.</param>
    /// <param name="headDim">Width of each head.</param>
    /// <param name="bias">Biases on to_q/to_k/to_v (false in the UNet's transformers, true in the VAE).</param>
    /// <param name="groupNorm">The VAE form: (groups, eps) of the GroupNorm before the projections; the input is [B, C, H, W] and the output adds the residual.</param>
    public Attention(long queryDim, long? contextDim, int heads, int headDim, bool bias, (int Groups, double Eps)? groupNorm = null, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(Attention))
    {
        _heads = heads;
        _headDim = headDim;
        var inner = (long)heads * headDim;
        if (groupNorm is { } norm)
        {
            group_norm = new GroupNormLayer(norm.Groups, queryDim, norm.Eps, device, dtype);
        }

        to_q = Layers.Linear(queryDim, inner, bias, device, dtype);
        to_k = Layers.Linear(contextDim ?? queryDim, inner, bias, device, dtype);
        to_v = Layers.Linear(contextDim ?? queryDim, inner, bias, device, dtype);
        to_out = nn.ModuleList<nn.Module<Tensor, Tensor>>(Layers.Linear(inner, queryDim, bias: true, device, dtype), Layers.Dropout());
        RegisterComponents();
    }

    /// <summary>Self-attention; see <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <param name="input">[B, N, C] tokens, or [B, C, H, W] in the VAE form.</param>
    /// <param name="context">[B, S, context dim] for cross-attention; null: attend to the input.</param>
    /// <returns>The input's shape.</returns>
    public Tensor Forward(Tensor input, Tensor? context)
    {
        using var scope = NewDisposeScope();
        var hidden = input;
        long[]? spatial = null;
        if (input.dim() == 4)
        {
            spatial = input.shape;
            hidden = input.view(spatial[0], spatial[1], spatial[2] * spatial[3]).transpose(1, 2);
        }

        if (group_norm is not null)
        {
            hidden = group_norm.forward(hidden.transpose(1, 2)).transpose(1, 2);
        }

        var batch = hidden.shape[0];
        var source = context ?? hidden;
        var query = to_q.forward(hidden).view(batch, -1, _heads, _headDim).transpose(1, 2);
        var key = to_k.forward(source).view(batch, -1, _heads, _headDim).transpose(1, 2);
        var value = to_v.forward(source).view(batch, -1, _heads, _headDim).transpose(1, 2);
        var attended = nn.functional.scaled_dot_product_attention(query, key, value, null, 0.0, false)
            .transpose(1, 2).reshape(batch, -1, (long)_heads * _headDim);
        var output = to_out[0].forward(attended);
        if (spatial is not null)
        {
            output = output.transpose(-1, -2).reshape(spatial);
        }

        return (group_norm is not null ? output + input : output).MoveToOuterDisposeScope();
    }
}
