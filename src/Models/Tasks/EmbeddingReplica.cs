using DistributedInference.Models.Bert;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// A BERT sentence embedder as a replica (task embed). Input rows are <see cref="TokenRows"/> (or an ids tensor, then
/// every position is a token), or sentences (a list of strings, tokenized as sentence-transformers does); results are
/// float32 embeddings [B, dimension] on the CPU, owned by the caller, pooled and normalised as the folder's
/// sentence-transformers modules say.
/// </summary>
public sealed class EmbeddingReplica : IReplicaModel
{
    private readonly SentenceEmbedder _embedder;

    private EmbeddingReplica(SentenceEmbedder embedder, ReplicaSpec spec, DeviceName device)
    {
        _embedder = embedder;
        Spec = spec;
        Description = spec.On(device);
    }

    public string Description { get; }

    public ReplicaSpec Spec { get; }

    /// <summary>Builds the embedder from <paramref name="source"/> on each device it is called for.</summary>
    /// <param name="tokenizer">Tokenizes sentences given as strings; null: the replica takes token ids only.</param>
    /// <param name="randomSeed">The seed of a built-in's random weights (part of the replica's identity); null for a folder.</param>
    public static ReplicaModelFactory Factory(BertSource source, ScalarType dtype, SentenceTokenizer? tokenizer = null, long? randomSeed = null) =>
        device => new EmbeddingReplica(
            new SentenceEmbedder(source.CreateModel(device.ToTorch(), dtype), source.Sentence, tokenizer, owns: false),
            new ReplicaSpec(ModelIdentity.Of(source.Name, randomSeed), InferenceTask.Embed, Precisions.Of(dtype)),
            device);

    public object Run(object rows)
    {
        if (rows is System.Collections.IList list && list.Cast<object?>().All(p => p is string))
        {
            return _embedder.Embed(list.Cast<string>().ToList());
        }

        var (inputIds, attentionMask, _) = TokenRows.Read(rows, "bert");
        using var mask = attentionMask is null ? ones_like(inputIds, ScalarType.Int64) : null;
        return _embedder.Embed(inputIds, attentionMask ?? mask!);
    }

    public void Dispose()
    {
        _embedder.Model.Dispose();
        _embedder.Dispose();
    }
}
