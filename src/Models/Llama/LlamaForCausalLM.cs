using DistributedInference.Models.Generation;
using DistributedInference.Models.Kernels;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// A Llama-family decoder with its language-model head (transformers' <c>LlamaForCausalLM</c>,
/// <c>MistralForCausalLM</c>, <c>Qwen2ForCausalLM</c>, <c>Qwen3ForCausalLM</c>). Parameters are named like the
/// checkpoint's keys (<c>model.layers.0.self_attn.q_proj.weight</c>, <c>lm_head.weight</c>); with tied embeddings
/// there is no <c>lm_head</c> and the head multiplies by <c>model.embed_tokens.weight</c>. Build one with
/// <see cref="LlamaSource.CreateModel"/>.
/// </summary>
public sealed class LlamaForCausalLM : nn.Module<Tensor, Tensor>, ICausalLanguageModel
{
    private readonly LlamaModel model;
    private readonly Linear? lm_head;

    /// <summary>Allocates uninitialised weights on <paramref name="device"/> in <paramref name="dtype"/>; fill them before use.</summary>
    public LlamaForCausalLM(LlamaConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(LlamaForCausalLM))
    {
        model = new LlamaModel(config, device, dtype);
        if (!config.TieWordEmbeddings)
        {
            lm_head = LlamaLinear.Create(config.HiddenSize, config.VocabSize, bias: false, device, dtype);
        }

        Dtype = dtype;
        EndOfSequenceIds = config.EosTokenIds.Where(id => id < config.VocabSize).ToList();
        DeclaredPadTokenId = config.PadTokenId;
        PadTokenId = config.PadTokenId ?? (EndOfSequenceIds.Count > 0 ? EndOfSequenceIds[0] : 0);
        RegisterComponents();
    }

    /// <summary>The model's config.</summary>
    public LlamaConfig Config => model.Config;

    /// <summary>The decoder stack.</summary>
    public LlamaModel Model => model;

    /// <summary>The head's weight, [vocab, hidden].</summary>
    public Tensor HeadWeight => lm_head?.weight ?? model.EmbeddingWeight;

    /// <inheritdoc/>
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    public ScalarType Dtype { get; }

    /// <inheritdoc/>
    /// <remarks><c>generation_config.json</c>'s ids when the folder has one, else config.json's; ids outside the vocabulary are dropped.</remarks>
    public IReadOnlyList<long> EndOfSequenceIds { get; internal set; }

    /// <inheritdoc/>
    /// <remarks>pad_token_id when known, else the first end-of-sequence id, else 0.</remarks>
    public long PadTokenId { get; internal set; }

    /// <inheritdoc/>
    /// <remarks>generation_config.json's pad_token_id when it sets one, else config.json's.</remarks>
    public long? DeclaredPadTokenId { get; internal set; }

    /// <summary>Not the entry point: see <see cref="Logits"/>.</summary>
    public override Tensor forward(Tensor input) => Head(model.Forward(input));

    /// <summary>Logits for a batch, as <c>model(input_ids, attention_mask=...)</c> computes them, without gradients.</summary>
    /// <param name="inputIds">[B, T] int64 on the model's device.</param>
    /// <param name="attentionMask">[B, T], 1 = real token, 0 = padding (right or left); null when nothing is padded.
    /// Logits at padded positions are meaningless.</param>
    /// <param name="positionIds">[B, T] int64; default arange(T) for every row, as transformers' forward.</param>
    /// <returns>[B, T, vocab] in the model's dtype; the caller owns it.</returns>
    /// <exception cref="InvalidInputException">Ids this model cannot run.</exception>
    public Tensor Logits(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null)
    {
        CheckInput(inputIds);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Head(model.Forward(inputIds.to(ScalarType.Int64), positionIds, attentionMask)).MoveToOuterDisposeScope();
    }

    /// <summary>Generates a continuation of each row with <see cref="GenerationLoop"/>; see there for the arguments.</summary>
    /// <returns>[B, T + n] int64 ids, left-padded prompt then n &lt;= max_new_tokens new ids; the caller owns it.</returns>
    public Tensor Generate(Tensor inputIds, Tensor? attentionMask, GenerationOptions options, IReadOnlyList<long>? rowSeeds = null) =>
        GenerationLoop.Generate(this, inputIds, attentionMask, options, rowSeeds);

    /// <inheritdoc/>
    public void CheckInput(Tensor inputIds, long extraPositions = 0) => LlamaModel.CheckInput(Config, inputIds, extraPositions);

    /// <inheritdoc/>
    public KeyValueCache CreateCache(long batch, long capacity, Device device) =>
        new(Config.LayerCount, batch, Config.KeyValueHeadCount, capacity, Config.HeadDim, device, Dtype);

    /// <inheritdoc/>
    public Tensor NextTokenLogits(Tensor inputIds, Tensor positionIds, Tensor? attentionMask, KeyValueCache cache) =>
        Head(model.Forward(inputIds, positionIds, attentionMask, cache).select(1, -1));

    /// <summary>The head: [.., hidden] to [.., vocab].</summary>
    public Tensor Head(Tensor hidden) => SkinnyLinear.Linear(hidden, HeadWeight);
}
