using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// GPT-2 with a classification head (<c>score</c>, no bias) read at the last non-padding token of each row, as
/// Hugging Face's <c>GPT2ForSequenceClassification</c> does.
/// </summary>
public sealed class Gpt2ForSequenceClassification : nn.Module<Tensor, Tensor>
{
    private readonly Gpt2Model transformer;
    private readonly Linear score;

    public Gpt2ForSequenceClassification(Gpt2Config config)
        : base(nameof(Gpt2ForSequenceClassification))
    {
        transformer = new Gpt2Model(config);
        score = nn.Linear(config.EmbeddingSize, config.LabelCount, hasBias: false);
        RegisterComponents();
    }

    public Gpt2Config Config => transformer.Config;

    public Gpt2Model Transformer => transformer;

    internal Linear Score => score;

    public override Tensor forward(Tensor input) => Classify(input);

    /// <summary>Logits [B, labels].</summary>
    public Tensor Classify(Tensor inputIds, Tensor? attentionMask = null)
    {
        Gpt2Model.CheckInput(Config, inputIds);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var hidden = transformer.Forward(inputIds, attentionMask);
        return score.forward(AtLastToken(hidden, inputIds, attentionMask, Config.PadTokenId)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Picks each row's hidden state at its last real token, found one way whatever else shares the batch: with a pad id,
    /// the last position whose id is not the pad id (transformers' rule, so a row ending in the pad id's token pools where
    /// transformers pools); without one, the last position where the attention mask is 1; with neither, the last position.
    /// </summary>
    internal static Tensor AtLastToken(Tensor hidden, Tensor inputIds, Tensor? attentionMask, long? padTokenId)
    {
        var (batch, steps) = (inputIds.shape[0], inputIds.shape[1]);
        Tensor index;
        if (attentionMask is null && padTokenId is null)
        {
            index = full(batch, steps - 1, ScalarType.Int64, hidden.device);
        }
        else
        {
            var real = padTokenId is { } pad ? inputIds.ne(pad).to(ScalarType.Int64) : attentionMask!.to(ScalarType.Int64);
            index = (arange(steps, ScalarType.Int64, hidden.device) * real).argmax(-1);
        }

        return hidden[arange(batch, ScalarType.Int64, hidden.device), index];
    }
}
