using System.Text.Json.Nodes;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Bert;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// A model of any family as <c>di bench model</c> measures it: a forward pass (logits, or BERT's last hidden state),
/// generation for decoders, and the arithmetic behind the figures: FLOPs of a pass (2 per weight of every matmul per
/// token, plus the attention's useful products, causal pairs only) and bytes a decode step reads (every matmul weight
/// once, plus the cache). Also the shape description the PyTorch baseline builds the same model from.
/// </summary>
public sealed class BenchModel : IDisposable
{
    private readonly nn.Module _module;
    private readonly Func<Tensor, Tensor> _forward;
    private readonly int _layers;
    private readonly long _attentionWidth;
    private readonly long _cacheWidth;

    // The weights of DecodeMatmuls that are views made here (GPT-2's Conv1D weights transposed back), not parameters:
    // disposed with the model, as they would keep its memory until collected.
    private readonly IReadOnlyList<Tensor> _views = [];

    private BenchModel(nn.Module module, ICausalLanguageModel? decoder, Func<Tensor, Tensor> forward, string family, int layers, long attentionWidth, long cacheWidth, long headWeights, JsonObject? spec, Func<IReadOnlyList<(string Name, Tensor Parameter)>, IReadOnlyList<(string Kind, Tensor Weight, Tensor? Bias)>>? decodeMatmuls = null)
    {
        _module = module;
        Decoder = decoder;
        _forward = forward;
        Family = family;
        _layers = layers;
        _attentionWidth = attentionWidth;
        _cacheWidth = cacheWidth;
        HeadWeights = headWeights;
        PyTorchSpec = spec;
        var parameters = module.named_parameters().ToList();
        Parameters = parameters.Sum(p => p.parameter.NumberOfElements);
        ElementSize = parameters[0].parameter.ElementSize;
        var lookupOnly = new[] { "embed_tokens", "wte", "wpe", "word_embeddings", "position_embeddings", "token_type_embeddings" };
        MatmulWeights = parameters.Where(p => p.parameter.dim() == 2 && !lookupOnly.Any(p.name.Contains)).Sum(p => p.parameter.NumberOfElements)
            + (parameters.Any(p => p.name.Contains("lm_head", StringComparison.Ordinal)) ? 0 : headWeights);
        if (decodeMatmuls is not null)
        {
            DecodeMatmuls = decodeMatmuls(parameters.Select(p => (p.name, (Tensor)p.parameter)).ToList());
            var handles = parameters.Select(p => p.parameter.Handle).ToHashSet();
            _views = DecodeMatmuls.Select(m => m.Weight).Where(w => !handles.Contains(w.Handle)).ToList();
        }
    }

    // A decoder's layer matmuls in the order a step multiplies by them (parameters are registered in forward order), then
    // its head: each weight as [out, in] (a GPT-2 Conv1D's [in, out] parameter transposed back, a view of the same memory).
    private static Func<IReadOnlyList<(string Name, Tensor Parameter)>, IReadOnlyList<(string Kind, Tensor Weight, Tensor? Bias)>> LayerMatmuls(
        string layerPrefix, Func<string, string> kind, bool transposed, Tensor head) => parameters =>
    {
        var byName = parameters.ToDictionary(p => p.Name, p => p.Parameter);
        return parameters
            .Where(p => p.Parameter.dim() == 2 && p.Name.StartsWith(layerPrefix, StringComparison.Ordinal))
            .Select(p => (Kind: kind(p.Name), Weight: transposed ? p.Parameter.t() : p.Parameter, Bias: byName.GetValueOrDefault(p.Name[..^"weight".Length] + "bias")))
            .Append(("lm_head", head, null))
            .ToList();
    };

    /// <summary>
    /// Every [out, in] weight (with its bias, if any) a decode step multiplies by through <c>SkinnyLinear</c>, in the order it does, named by kind
    /// (<c>q_proj</c> ... <c>down_proj</c>, <c>lm_head</c>; GPT-2: <c>attn.c_attn</c> ... <c>mlp.c_proj</c>, <c>lm_head</c>); empty for BERT,
    /// which does not decode.
    /// </summary>
    public IReadOnlyList<(string Kind, Tensor Weight, Tensor? Bias)> DecodeMatmuls { get; } = [];

    /// <summary>gpt2, llama, mistral, qwen2, qwen3 or bert.</summary>
    public string Family { get; }

    /// <summary>The decoder, or null for BERT (no generation).</summary>
    public ICausalLanguageModel? Decoder { get; }

    /// <summary>Every parameter, embeddings included.</summary>
    public long Parameters { get; }

    /// <summary>Weights multiplied per token: every linear layer and the head (a tied head counts its embedding).</summary>
    public long MatmulWeights { get; }

    /// <summary>Weights of the language-model head (0 for BERT).</summary>
    public long HeadWeights { get; }

    /// <summary>Bytes per parameter.</summary>
    public long ElementSize { get; }

    /// <summary>The shapes the PyTorch script builds (family, sizes); null where it has no model of this family.</summary>
    public JsonObject? PyTorchSpec { get; }

    /// <summary>Builds the model of <paramref name="source"/> on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    /// <exception cref="InvalidInputException">A checkpoint that does not load.</exception>
    public static BenchModel Create(IModelSource source, Device device, ScalarType dtype)
    {
        switch (source)
        {
            case Gpt2ModelSource gpt2:
                {
                    var config = gpt2.Source.Config;
                    var model = gpt2.Source.CreateLanguageModel(device, dtype);
                    var spec = new JsonObject
                    {
                        ["family"] = "gpt2",
                        ["vocab"] = config.VocabSize,
                        ["hidden"] = config.EmbeddingSize,
                        ["heads"] = config.HeadCount,
                        ["layers"] = config.LayerCount,
                        ["positions"] = config.MaxPositions,
                        ["tied"] = true,
                        ["eps"] = config.LayerNormEpsilon,
                    };
                    return new BenchModel(model, model, ids => model.Logits(ids), "gpt2", config.LayerCount, config.EmbeddingSize, config.EmbeddingSize, model.HeadWeight.NumberOfElements, spec,
                        LayerMatmuls("transformer.h.", name => string.Join('.', name.Split('.')[^3..^1]), transposed: true, model.HeadWeight));
                }

            case LlamaModelSource llama:
                {
                    var config = llama.Source.Config;
                    var model = llama.Source.CreateModel(device, dtype);
                    var spec = new JsonObject
                    {
                        ["family"] = "llama",
                        ["vocab"] = config.VocabSize,
                        ["hidden"] = config.HiddenSize,
                        ["heads"] = config.HeadCount,
                        ["kv_heads"] = config.KeyValueHeadCount,
                        ["head_dim"] = config.HeadDim,
                        ["intermediate"] = config.IntermediateSize,
                        ["layers"] = config.LayerCount,
                        ["tied"] = config.TieWordEmbeddings,
                        ["qkv_bias"] = config.QkvBias,
                        ["qk_norm"] = config.QueryKeyNorm,
                        ["eps"] = config.RmsNormEps,
                    };
                    return new BenchModel(model, model, ids => model.Logits(ids), config.ModelType, config.LayerCount,
                        (long)config.HeadCount * config.HeadDim, (long)config.KeyValueHeadCount * config.HeadDim, model.HeadWeight.NumberOfElements, spec,
                        LayerMatmuls("model.layers.", name => name.Split('.')[^2], transposed: false, model.HeadWeight));
                }

            case BertModelSource bert:
                {
                    var config = bert.Source.Config;
                    var model = bert.Source.CreateModel(device, dtype);
                    Tensor Forward(Tensor ids)
                    {
                        using var scope = NewDisposeScope();
                        using var noGrad = no_grad();
                        return model.Forward(ids, null, null).LastHiddenState.MoveToOuterDisposeScope();
                    }

                    return new BenchModel(model, null, Forward, "bert", config.LayerCount, config.HiddenSize, config.HiddenSize, 0, null);
                }

            default:
                throw new InvalidInputException($"{source.Name}: di bench model has no driver for model_type {source.ModelType}");
        }
    }

    /// <summary>One forward pass; the caller owns the result.</summary>
    /// <param name="inputIds">[B, T] int64 on the model's device.</param>
    /// <returns>[B, T, vocab] logits (BERT: [B, T, hidden]).</returns>
    public Tensor Forward(Tensor inputIds) => _forward(inputIds);

    /// <summary>FLOPs of one pass over <paramref name="rows"/> x <paramref name="steps"/> new tokens after <paramref name="past"/> cached ones.</summary>
    /// <param name="headPositions">Positions per row the head runs on (all for a forward pass, 1 for generation).</param>
    /// <param name="causal">Whether a query sees only earlier keys (decoders) or every key (BERT).</param>
    public double Flops(long rows, long steps, long past, long headPositions, bool causal)
    {
        var linear = 2.0 * (MatmulWeights - HeadWeights) * rows * steps;
        var head = 2.0 * HeadWeights * rows * headPositions;
        // Q.K and A.V: 2 products of width attentionWidth per visible (query, key) pair, 2 FLOPs each.
        double pairs = causal ? (steps * past) + (steps * (steps + 1) / 2.0) : steps * (past + steps);
        var attention = 4.0 * _attentionWidth * pairs * rows * _layers;
        return linear + head + attention;
    }

    /// <summary>Bytes one decode step reads at least: every matmul weight once, and each row's cached keys and values.</summary>
    public double DecodeBytes(long rows, long context) =>
        (double)MatmulWeights * ElementSize + (2.0 * _layers * _cacheWidth * context * rows * ElementSize);

    public void Dispose()
    {
        foreach (var view in _views)
        {
            view.Dispose();
        }

        _module.Dispose();
    }
}
