using DistributedInference.Models.Generation;
using DistributedInference.Models.Kernels;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// GPT-2 with its language-model head. The head's weight is the token embedding (<c>wte</c>) unless the
/// checkpoint stores its own <c>lm_head.weight</c> and the config unties them. As an
/// <see cref="ICausalLanguageModel"/> it generates through <see cref="GenerationLoop"/>.
/// </summary>
public sealed class Gpt2LMHeadModel : nn.Module<Tensor, Tensor>, ICausalLanguageModel
{
    private readonly Gpt2Model transformer;
    private readonly Linear? lm_head;

    public Gpt2LMHeadModel(Gpt2Config config, bool tiedHead = true)
        : base(nameof(Gpt2LMHeadModel))
    {
        transformer = new Gpt2Model(config);
        if (!tiedHead)
        {
            lm_head = nn.Linear(config.EmbeddingSize, config.VocabSize, hasBias: false);
        }

        RegisterComponents();
    }

    public Gpt2Config Config => transformer.Config;

    public Gpt2Model Transformer => transformer;

    /// <summary>The weight the head multiplies by: [vocab, n_embd].</summary>
    public Tensor HeadWeight => lm_head?.weight ?? transformer.TokenEmbedding.weight!;

    public override Tensor forward(Tensor input) => Head(transformer.Forward(input));

    /// <summary>Logits [B, T, vocab] for a batch of token ids (attention mask optional, 1 = token, 0 = padding).</summary>
    public Tensor Logits(Tensor inputIds, Tensor? attentionMask = null)
    {
        Gpt2Model.CheckInput(Config, inputIds);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Head(transformer.Forward(inputIds, attentionMask)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    /// <remarks>The config's end-of-text token when the vocabulary has it (see <see cref="GreedySearch.EndOfText"/>).</remarks>
    public IReadOnlyList<long> EndOfSequenceIds => GreedySearch.EndOfText(Config) is { } eos ? [eos] : [];

    /// <inheritdoc/>
    public long PadTokenId => GreedySearch.PadToken(Config);

    /// <inheritdoc/>
    public long? DeclaredPadTokenId => Config.PadTokenId;

    /// <inheritdoc/>
    public ScalarType Dtype => HeadWeight.dtype;

    /// <inheritdoc/>
    public void CheckInput(Tensor inputIds, long extraPositions = 0) => Gpt2Model.CheckInput(Config, inputIds, extraPositions);

    /// <inheritdoc/>
    public KeyValueCache CreateCache(long batch, long capacity, Device device) =>
        new(Config.LayerCount, batch, Config.HeadCount, capacity, Config.HeadSize, device, Dtype);

    /// <inheritdoc/>
    public Tensor NextTokenLogits(Tensor inputIds, Tensor positionIds, Tensor? attentionMask, KeyValueCache cache) =>
        Head(transformer.Forward(inputIds, attentionMask, positionIds, cache).select(1, -1));

    internal Tensor Head(Tensor hidden) => SkinnyLinear.Linear(hidden, HeadWeight);
}
