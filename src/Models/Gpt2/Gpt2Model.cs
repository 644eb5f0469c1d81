using DistributedInference.Models.Generation;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// The GPT-2 transformer (Hugging Face's <c>GPT2Model</c>): token and position embeddings, the blocks, the final
/// layer norm. Its forward returns the last hidden state, after <c>ln_f</c>.
/// </summary>
public sealed class Gpt2Model : nn.Module<Tensor, Tensor>
{
    private readonly Embedding wte;
    private readonly Embedding wpe;
    private readonly ModuleList<Gpt2Block> h;
    private readonly LayerNorm ln_f;

    public Gpt2Model(Gpt2Config config)
        : base(nameof(Gpt2Model))
    {
        Config = config;
        wte = nn.Embedding(config.VocabSize, config.EmbeddingSize);
        wpe = nn.Embedding(config.MaxPositions, config.EmbeddingSize);
        h = nn.ModuleList(Enumerable.Range(0, config.LayerCount).Select(_ => new Gpt2Block(config)).ToArray());
        ln_f = nn.LayerNorm(config.EmbeddingSize, config.LayerNormEpsilon);
        RegisterComponents();
    }

    public Gpt2Config Config { get; }

    internal Embedding TokenEmbedding => wte;

    internal Embedding PositionEmbedding => wpe;

    internal IReadOnlyList<Gpt2Block> Blocks => h.ToList();

    internal LayerNorm FinalNorm => ln_f;

    public override Tensor forward(Tensor input) => Forward(input);

    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, past + T], 1 for tokens and 0 for padding; null when nothing is padded.</param>
    /// <param name="positionIds">[B or 1, T]; by default the positions right after what the cache holds.</param>
    /// <param name="cache">Keys and values of earlier positions, extended by this call.</param>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KeyValueCache? cache = null)
    {
        var steps = inputIds.shape[1];
        var past = cache?.Length ?? 0;
        positionIds ??= arange(past, past + steps, ScalarType.Int64, inputIds.device).unsqueeze(0);
        var hidden = Embed(wte, wpe, inputIds, positionIds);
        var context = AttentionContext.Create(attentionMask, steps, cache, inputIds.device);
        for (var i = 0; i < h.Count; i++)
        {
            hidden = h[i].Forward(hidden, context, i);
        }

        cache?.Advance(steps);
        return ln_f.forward(hidden);
    }

    /// <summary>Rejects token ids a GPT-2 of this config cannot embed, before any device work.</summary>
    public static void CheckInput(Gpt2Config config, Tensor inputIds, long extraPositions = 0)
        => Tokenization.TokenIds.Check(inputIds, config.VocabSize, config.MaxPositions, "n_positions", extraPositions);

    internal static Tensor Embed(Embedding tokens, Embedding positions, Tensor inputIds, Tensor positionIds) =>
        tokens.forward(inputIds) + positions.forward(positionIds);
}
