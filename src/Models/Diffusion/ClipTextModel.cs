using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// The CLIP text encoder of Stable Diffusion (transformers' <c>CLIPTextModel</c>); parameters are named like the
/// checkpoint's keys (<c>text_model.encoder.layers.0.self_attn.q_proj.weight</c>). Stable Diffusion reads its
/// <c>last_hidden_state</c>. Build one with <see cref="StableDiffusionSource"/>.
/// </summary>
public sealed class ClipTextModel : nn.Module<Tensor, Tensor>
{
    private readonly ClipTextTransformer text_model;

    /// <summary>Allocates uninitialised weights on <paramref name="device"/> in <paramref name="dtype"/>; fill them before use.</summary>
    public ClipTextModel(ClipTextConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(ClipTextModel))
    {
        Config = config;
        text_model = new ClipTextTransformer(config, device, dtype);
        RegisterComponents();
    }

    /// <summary>The model's config.</summary>
    public ClipTextConfig Config { get; }

    /// <summary>last_hidden_state of <paramref name="input"/> ([B, T] int64 ids): [B, T, hidden].</summary>
    public override Tensor forward(Tensor input) => text_model.Forward(input);

    /// <summary>
    /// <c>text_encoder(input_ids).last_hidden_state</c>, without gradients, in its own dispose scope.
    /// </summary>
    /// <param name="inputIds">[B, T] int64 on the model's device, ids in [0, vocab_size), T &lt;= max_position_embeddings.</param>
    /// <param name="hiddenStates">When given, receives the embeddings and each layer's output (before the final norm); the caller owns them.</param>
    /// <returns>[B, T, hidden] in the model's dtype; the caller owns it.</returns>
    /// <exception cref="InvalidInputException">Ids outside the vocabulary or more positions than the model has.</exception>
    public Tensor LastHiddenState(Tensor inputIds, List<Tensor>? hiddenStates = null)
    {
        Tokenization.TokenIds.Check(inputIds, Config.VocabSize, Config.MaxPositions, "max_position_embeddings");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var states = hiddenStates is null ? null : new List<Tensor>();
        var result = text_model.Forward(inputIds, states);
        foreach (var state in states ?? [])
        {
            hiddenStates!.Add(state.MoveToOuterDisposeScope());
        }

        return result.MoveToOuterDisposeScope();
    }
}
