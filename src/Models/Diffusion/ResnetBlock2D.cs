using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>ResnetBlock2D</c> ("default" time-embedding norm): <c>conv1(silu(norm1(x)))</c>, plus
/// <c>time_emb_proj(silu(temb))</c> per channel when a time embedding is given, then <c>conv2(silu(norm2(h)))</c>, added to
/// the input (through the 1x1 <c>conv_shortcut</c> when the channel count changes) and divided by the output scale factor.
/// The VAE's resnets have no time embedding.
/// </summary>
public sealed class ResnetBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly GroupNormLayer norm1;
    private readonly Conv2dLayer conv1;
    private readonly Linear? time_emb_proj;
    private readonly GroupNormLayer norm2;
    private readonly Conv2dLayer conv2;
    private readonly Conv2dLayer? conv_shortcut;
    private readonly double _outputScaleFactor;

    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="timeEmbeddingChannels">Width of the time embedding; null: none (the VAE).</param>
    /// <param name="groups">GroupNorm groups of both norms.</param>
    /// <param name="eps">GroupNorm epsilon.</param>
    /// <param name="outputScaleFactor">The sum is divided by it (the UNet's mid_block_scale_factor; 1 elsewhere).</param>
    public ResnetBlock2D(long inChannels, long outChannels, long? timeEmbeddingChannels, int groups, double eps, double outputScaleFactor = 1.0, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(ResnetBlock2D))
    {
        norm1 = new GroupNormLayer(groups, inChannels, eps, device, dtype);
        conv1 = new Conv2dLayer(inChannels, outChannels, 3, padding: 1, device: device, dtype: dtype);
        if (timeEmbeddingChannels is { } temb)
        {
            time_emb_proj = Layers.Linear(temb, outChannels, bias: true, device, dtype);
        }

        norm2 = new GroupNormLayer(groups, outChannels, eps, device, dtype);
        conv2 = new Conv2dLayer(outChannels, outChannels, 3, padding: 1, device: device, dtype: dtype);
        if (inChannels != outChannels)
        {
            conv_shortcut = new Conv2dLayer(inChannels, outChannels, 1, device: device, dtype: dtype);
        }

        _outputScaleFactor = outputScaleFactor;
        RegisterComponents();
    }

    /// <summary>Without a time embedding (the VAE's resnets).</summary>
    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <param name="input">[B, in, H, W].</param>
    /// <param name="timeEmbedding">[B, temb] (the UNet's), or null.</param>
    /// <returns>[B, out, H, W].</returns>
    public Tensor Forward(Tensor input, Tensor? timeEmbedding)
    {
        // Its own scope: the block's temporaries (several activations of its size) are freed when it returns, not when
        // the caller's step ends (a whole UNet's temporaries at once would not fit: sd-1.5 at 512x512, batch 4).
        using var scope = NewDisposeScope();
        var hidden = conv1.forward(nn.functional.silu(norm1.forward(input)));
        if (time_emb_proj is not null && timeEmbedding is not null)
        {
            hidden = hidden + time_emb_proj.forward(nn.functional.silu(timeEmbedding)).unsqueeze(-1).unsqueeze(-1);
        }

        hidden = conv2.forward(nn.functional.silu(norm2.forward(hidden)));
        var output = (conv_shortcut?.forward(input) ?? input) + hidden;
        return (_outputScaleFactor == 1.0 ? output : output / _outputScaleFactor).MoveToOuterDisposeScope();
    }
}
