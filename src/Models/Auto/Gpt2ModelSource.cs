using DistributedInference.Models.Generation;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Auto;

/// <summary>GPT-2 (<c>model_type: gpt2</c>) as an <see cref="IModelSource"/>: a language model, or a classifier when the folder has <c>score.weight</c>.</summary>
public sealed class Gpt2ModelSource : IModelSource
{
    public Gpt2ModelSource(Gpt2Source source)
    {
        Source = source;
        Tasks = source.HasClassifierHead
            ? [InferenceTask.Logits, InferenceTask.Generate, InferenceTask.Classify]
            : [InferenceTask.Logits, InferenceTask.Generate];
    }

    public Gpt2Source Source { get; }

    public string Name => Source.Name;

    public string ModelType => "gpt2";

    public long? RandomSeed => Source.IsRandom ? Source.Seed : null;

    public int VocabSize => Source.Config.VocabSize;

    public long PadTokenId => GreedySearch.PadToken(Source.Config);

    public long? DeclaredPadTokenId => Source.Config.PadTokenId;

    public IReadOnlyList<long> EosTokenIds => GreedySearch.EndOfText(Source.Config) is { } eos ? [eos] : [];

    public IReadOnlyList<InferenceTask> Tasks { get; }

    public IReadOnlyList<string> LabelNames => Source.Config.LabelNames;

    /// <summary>GPT-2's own BPE, when the model's vocabulary is GPT-2's (the tiny test models have a smaller one).</summary>
    public ITextTokenizer? Tokenizer => VocabSize >= Gpt2Tokenizer.VocabularySize ? Gpt2Tokenizer.Instance : null;

    public TokenBatch Tokenize(IReadOnlyList<string> prompts, InferenceTask task)
    {
        var tokenizer = Tokenizer ?? throw new InvalidInputException(
            $"prompts use GPT-2's tokenizer ({Gpt2Tokenizer.VocabularySize} tokens) but this model's vocabulary has {VocabSize}: give token ids (--input-ids) instead");
        return TokenBatch.Pad(prompts.Select(p => tokenizer.Encode(p)).ToList(), PadTokenId, padLeft: task == InferenceTask.Generate);
    }

    public void CheckInput(Tensor inputIds, InferenceTask task, GenerationOptions generation)
    {
        ModelTasks.Require(this, task);
        Gpt2Model.CheckInput(Source.Config, inputIds, task == InferenceTask.Generate ? generation.MaxNewTokens : 0);
    }

    public ReplicaModelFactory Replica(InferenceTask task, ScalarType dtype, GenerationOptions generation)
    {
        ModelTasks.Require(this, task);
        return Gpt2Replica.Factory(Source, task, dtype, generation);
    }

    public IStagedModel LoadStaged(InferenceTask task)
    {
        ModelTasks.RequirePipelined(this, task);
        // A folder: stages read only their own tensors. A built-in's random weights come from one generator over the whole model.
        return Source.IsRandom ? Gpt2StagedModel.Load(Source, task) : new Gpt2CheckpointStagedModel(Source, task);
    }
}
