using DistributedInference.Models.Bert;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Auto;

/// <summary>
/// A BERT sentence embedder (<c>model_type: bert</c>, a sentence-transformers folder or a plain BERT) as an
/// <see cref="IModelSource"/>: task embed; prompts are tokenized as sentence-transformers does (lower-casing when the
/// folder says so, [CLS] ... [SEP], truncation to max_seq_length, right padding).
/// </summary>
public sealed class BertModelSource : IModelSource
{
    private readonly Lazy<SentenceTokenizer?> _tokenizer;

    public BertModelSource(BertSource source)
    {
        Source = source;
        _tokenizer = new Lazy<SentenceTokenizer?>(() => source.HasTokenizer ? source.LoadTokenizer() : null);
    }

    public BertSource Source { get; }

    public string Name => Source.Name;

    public string ModelType => "bert";

    public long? RandomSeed => Source.HasTokenizer || Source.Sentence.TransformerFolder is not null ? null : Source.Seed;

    public int VocabSize => Source.Config.VocabSize;

    public long PadTokenId => Source.Config.PadTokenId ?? 0;

    public long? DeclaredPadTokenId => Source.Config.PadTokenId;

    public IReadOnlyList<long> EosTokenIds => [];

    public IReadOnlyList<InferenceTask> Tasks { get; } = [InferenceTask.Embed];

    public IReadOnlyList<string> LabelNames => [];

    public ITextTokenizer? Tokenizer => _tokenizer.Value?.Tokenizer;

    public TokenBatch Tokenize(IReadOnlyList<string> prompts, InferenceTask task)
    {
        var tokenizer = _tokenizer.Value ?? Source.LoadTokenizer();
        using var batch = tokenizer.Tokenize(prompts);
        var padded = batch.AttentionMask.eq(0).any().ToBoolean();
        return new TokenBatch(batch.InputIds.clone(), padded ? batch.AttentionMask.clone() : null);
    }

    public void CheckInput(Tensor inputIds, InferenceTask task, GenerationOptions generation)
    {
        ModelTasks.Require(this, task);
        BertModel.CheckInput(Source.Config, inputIds, null, null);
    }

    public ReplicaModelFactory Replica(InferenceTask task, ScalarType dtype, GenerationOptions generation)
    {
        ModelTasks.Require(this, task);
        return EmbeddingReplica.Factory(Source, dtype, _tokenizer.Value, RandomSeed);
    }

    public IStagedModel LoadStaged(InferenceTask task)
    {
        ModelTasks.RequirePipelined(this, task);
        return BertStagedModel.Load(Source);
    }
}
