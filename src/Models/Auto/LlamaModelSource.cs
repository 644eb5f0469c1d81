using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Auto;

/// <summary>
/// A Llama-family decoder (<c>model_type</c> llama, mistral, qwen2, qwen3) as an <see cref="IModelSource"/>: tasks
/// logits and generate; prompts go through the folder's <c>tokenizer.json</c> with its special tokens (Llama 3's BOS).
/// </summary>
public sealed class LlamaModelSource : IModelSource
{
    private readonly Lazy<HuggingFaceTokenizer?> _tokenizer;

    public LlamaModelSource(LlamaSource source)
    {
        Source = source;
        _tokenizer = new Lazy<HuggingFaceTokenizer?>(() =>
            !source.IsBuiltIn && File.Exists(Path.Combine(source.Name, HuggingFaceTokenizer.FileName)) ? HuggingFaceTokenizer.Load(source.Name) : null);
    }

    public LlamaSource Source { get; }

    public string Name => Source.Name;

    public string ModelType => Source.Config.ModelType;

    public long? RandomSeed => Source.IsBuiltIn ? Source.Seed : null;

    public int VocabSize => Source.Config.VocabSize;

    public long PadTokenId => Source.PadTokenId;

    public long? DeclaredPadTokenId => Source.DeclaredPadTokenId;

    public IReadOnlyList<long> EosTokenIds => Source.EndOfSequenceIds;

    public IReadOnlyList<InferenceTask> Tasks { get; } = [InferenceTask.Logits, InferenceTask.Generate];

    public IReadOnlyList<string> LabelNames => [];

    public ITextTokenizer? Tokenizer => _tokenizer.Value;

    public TokenBatch Tokenize(IReadOnlyList<string> prompts, InferenceTask task)
    {
        var tokenizer = Tokenizer ?? throw new InvalidInputException(
            $"{Name} has no tokenizer.json{(Source.IsBuiltIn ? " (a built-in with random weights)" : string.Empty)}: give token ids (--input-ids), or a model folder with tokenizer.json");
        return TokenBatch.Pad(prompts.Select(p => tokenizer.Encode(p)).ToList(), PadTokenId, padLeft: task == InferenceTask.Generate);
    }

    public void CheckInput(Tensor inputIds, InferenceTask task, GenerationOptions generation)
    {
        ModelTasks.Require(this, task);
        LlamaModel.CheckInput(Source.Config, inputIds, task == InferenceTask.Generate ? generation.MaxNewTokens : 0);
    }

    public ReplicaModelFactory Replica(InferenceTask task, ScalarType dtype, GenerationOptions generation)
    {
        ModelTasks.Require(this, task);
        return DecoderReplica.Factory(Source, task, dtype, generation, Tokenizer);
    }

    public IStagedModel LoadStaged(InferenceTask task)
    {
        ModelTasks.RequirePipelined(this, task);
        return new LlamaStagedModel(Source);
    }
}
