using DistributedInference.Models.Kernels;
using DistributedInference.Models.Staging;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary><c>wte+wpe</c>: token ids to the first hidden state.</summary>
public sealed class Gpt2EmbeddingLayer : StageLayer
{
    private readonly Embedding wte;
    private readonly Embedding wpe;

    internal Gpt2EmbeddingLayer(Gpt2Config config)
        : base("wte+wpe")
    {
        wte = nn.Embedding(config.VocabSize, config.EmbeddingSize);
        wpe = nn.Embedding(config.MaxPositions, config.EmbeddingSize);
        RegisterComponents();
    }

    public override StagedBatch forward(StagedBatch input)
    {
        var ids = input.InputIds;
        var positions = arange(ids.shape[1], ScalarType.Int64, ids.device).unsqueeze(0);
        return input with { Hidden = Gpt2Model.Embed(wte, wpe, ids, positions) };
    }
}

/// <summary><c>h.i</c>: one transformer block.</summary>
public sealed class Gpt2BlockLayer : StageLayer
{
    private readonly Gpt2Block block;

    internal Gpt2BlockLayer(int index, Gpt2Config config)
        : base($"h.{index}")
    {
        block = new Gpt2Block(config);
        RegisterComponents();
    }

    public override StagedBatch forward(StagedBatch input)
    {
        var context = AttentionContext.Create(input.AttentionMask, input.Hidden.shape[1], null, input.Hidden.device);
        return input with { Hidden = block.Forward(input.Hidden, context, layer: 0) };
    }
}

/// <summary><c>ln_f+head</c> of the language model: final norm, then logits [B, T, vocab].</summary>
public sealed class Gpt2LanguageHeadLayer : StageLayer
{
    private readonly LayerNorm ln_f;
    private readonly Parameter weight;

    internal Gpt2LanguageHeadLayer(Gpt2Config config)
        : base("ln_f+head")
    {
        ln_f = nn.LayerNorm(config.EmbeddingSize, config.LayerNormEpsilon);
        weight = new Parameter(empty(config.VocabSize, config.EmbeddingSize), requires_grad: false);
        RegisterComponents();
    }

    public override StagedBatch forward(StagedBatch input) =>
        input with { Hidden = SkinnyLinear.Linear(ln_f.forward(input.Hidden), weight) };
}

/// <summary><c>ln_f+head</c> of the classifier: final norm, then logits [B, labels] at each row's last token.</summary>
public sealed class Gpt2ClassifierHeadLayer : StageLayer
{
    private readonly LayerNorm ln_f;
    private readonly Linear score;
    private readonly long? _padTokenId;

    internal Gpt2ClassifierHeadLayer(Gpt2Config config)
        : base("ln_f+head")
    {
        _padTokenId = config.PadTokenId;
        ln_f = nn.LayerNorm(config.EmbeddingSize, config.LayerNormEpsilon);
        score = nn.Linear(config.EmbeddingSize, config.LabelCount, hasBias: false);
        RegisterComponents();
    }

    public override StagedBatch forward(StagedBatch input)
    {
        var hidden = ln_f.forward(input.Hidden);
        var last = Gpt2ForSequenceClassification.AtLastToken(hidden, input.InputIds, input.AttentionMask, _padTokenId);
        return input with { Hidden = score.forward(last) };
    }
}
