using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// The staged view of a Llama-family model: <c>embed_tokens</c>, <c>layers.0</c> ... <c>layers.N-1</c>,
/// <c>norm+lm_head</c>. Nothing is loaded up front: each stage builds only its own modules on its device and dtype
/// and reads only its tensors from the source (checkpoint shards, or the seeded random values, which are per tensor
/// and so identical to the whole model's).
/// </summary>
public sealed class LlamaStagedModel : IStagedModel
{
    private readonly LlamaSource _source;

    /// <param name="source">Where weights come from.</param>
    /// <param name="weightDtype">The dtype stages will mostly use: <see cref="StagedLayerInfo.ParameterBytes"/> counts in it.</param>
    /// <exception cref="InvalidInputException">The checkpoint's tensors are not this config's model (see <see cref="LlamaSource.CheckTensorNames"/>).</exception>
    public LlamaStagedModel(LlamaSource source, ScalarType weightDtype = ScalarType.Float32)
    {
        source.CheckTensorNames();
        _source = source;
        Layers = Describe(source.Config, ElementSize(weightDtype));
    }

    /// <summary>The model's config.</summary>
    public LlamaConfig Config => _source.Config;

    /// <inheritdoc/>
    public IReadOnlyList<StagedLayerInfo> Layers { get; }

    /// <inheritdoc/>
    /// <exception cref="ArgumentOutOfRangeException">The range is not within the layers.</exception>
    /// <exception cref="InvalidInputException">A tensor of the range is missing or wrongly shaped in the checkpoint.</exception>
    public ModelStage CreateStage(int first, int count, Device device, ScalarType dtype) =>
        ModelStage.Build(first, count, Layers.Count, device, i => CreateLayer(i, device, dtype));

    private StageLayer CreateLayer(int index, Device device, ScalarType dtype)
    {
        var config = Config;
        var (layer, checkpointName) = index switch
        {
            0 => ((StageLayer)new LlamaEmbeddingLayer(config, device, dtype), (Func<string, string>)(name => "model." + name)),
            _ when index <= config.LayerCount => (new LlamaDecoderStageLayer(config, index - 1, device, dtype),
                name => $"model.layers.{index - 1}.{name["layer.".Length..]}"),
            _ => (new LlamaHeadLayer(config, device, dtype),
                name => name.StartsWith("lm_head.", StringComparison.Ordinal)
                    ? (config.TieWordEmbeddings ? "model.embed_tokens.weight" : name)
                    : "model." + name),
        };
        try
        {
            _source.Fill(layer.named_parameters().Select(p => (checkpointName(p.name), (Tensor)p.parameter)).ToList());
            return layer;
        }
        catch
        {
            layer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// What each layer needs on its device for a run, from the config alone (nothing is read): weights in
    /// <paramref name="dtype"/>; with <paramref name="cached"/> (generate) each decoder layer's key/value cache for
    /// <paramref name="cacheRows"/> rows of <paramref name="positions"/> positions; activations as the largest temporaries
    /// of one forward over <paramref name="rows"/> rows (the MLP's gate and up projections, the attention scores; the head's float32 logits).
    /// </summary>
    /// <param name="dtype">The run's dtype.</param>
    /// <param name="cacheRows">Rows whose key/value cache a stage holds at once (every micro-batch in flight).</param>
    /// <param name="rows">Rows of one forward (a micro-batch).</param>
    /// <param name="positions">Positions per row at most (prompt + new tokens).</param>
    /// <param name="cached">Whether the run keeps a key/value cache (generate).</param>
    /// <param name="forwardPositions">Positions of the largest forward (a prefill's prompt when generating: the
    /// attention of its prompt over itself; the head makes logits of each row's last position only); null: <paramref name="positions"/>.</param>
    /// <returns>One entry per layer of <see cref="Layers"/>.</returns>
    public IReadOnlyList<Partitioning.LayerMemory> Memory(ScalarType dtype, long cacheRows, long rows, long positions, bool cached, long? forwardPositions = null)
    {
        var c = Config;
        var size = ElementSize(dtype);
        var forward = forwardPositions ?? positions;
        var tokens = rows * forward;
        var cache = cached ? 2L * c.KeyValueHeadCount * c.HeadDim * size * cacheRows * positions : 0;
        var decoderActivations = Math.Max(3L * c.IntermediateSize * size * tokens, (long)c.HeadCount * rows * forward * forward * 4);
        var headActivations = (long)c.VocabSize * 4 * (cached ? rows : tokens);
        return Layers.Select((layer, i) => i == 0
            ? new Partitioning.LayerMemory(layer.ParameterCount * size, 0, c.HiddenSize * size * tokens)
            : i <= c.LayerCount
                ? new Partitioning.LayerMemory(layer.ParameterCount * size, cache, decoderActivations)
                : new Partitioning.LayerMemory(layer.ParameterCount * size, 0, headActivations)).ToList();
    }

    private static List<StagedLayerInfo> Describe(LlamaConfig c, long bytesPerElement)
    {
        // FLOPs per token: two per weight of every matrix a token is multiplied by (the embedding is a lookup; the
        // attention scores' share, which grows with the sequence, is left out).
        StagedLayerInfo Info(string name, long count, long matrices) => new(name, count, count * bytesPerElement, 2 * matrices);

        long hidden = c.HiddenSize, q = (long)c.HeadCount * c.HeadDim, kv = (long)c.KeyValueHeadCount * c.HeadDim;
        var attention = (hidden * q) + (2 * hidden * kv) + (q * hidden);
        var mlp = 3 * hidden * c.IntermediateSize;
        var vectors = (2 * hidden)
            + (c.QkvBias ? q + (2 * kv) : 0) + (c.OutputBias ? hidden : 0)
            + (c.QueryKeyNorm ? 2 * c.HeadDim : 0)
            + (c.MlpBias ? (2L * c.IntermediateSize) + hidden : 0);
        var head = (long)c.VocabSize * hidden;

        var layers = new List<StagedLayerInfo> { Info("embed_tokens", head, 0) };
        layers.AddRange(Enumerable.Range(0, c.LayerCount).Select(i => Info($"layers.{i}", attention + mlp + vectors, attention + mlp)));
        layers.Add(Info("norm+lm_head", hidden + head, head));
        return layers;
    }

    private static long ElementSize(ScalarType dtype)
    {
        using var probe = empty([0], dtype);
        return probe.ElementSize;
    }
}
