using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Auto;

/// <summary>
/// A Stable Diffusion pipeline (a diffusers folder with <c>model_index.json</c>, or a built-in) as an
/// <see cref="IModelSource"/>: task text-to-image, replica mode; prompts are tokenized as the pipeline does (CLIP, padded
/// to 77 with the pad token, truncated to bos + 75 + eos).
/// </summary>
public sealed class StableDiffusionModelSource : IModelSource
{
    public StableDiffusionModelSource(StableDiffusionSource source)
    {
        Source = source;
    }

    /// <summary>The pipeline's configs, tokenizer and weights.</summary>
    public StableDiffusionSource Source { get; }

    public string Name => Source.Name;

    /// <summary>Not a transformers model_type: diffusers' pipeline class.</summary>
    public string ModelType => "stable-diffusion";

    public long? RandomSeed => Source.IsBuiltIn ? Source.Seed : null;

    public int VocabSize => Source.TextEncoder.VocabSize;

    public long PadTokenId => Source.Tokenizer.PadTokenId;

    public IReadOnlyList<long> EosTokenIds => [];

    /// <inheritdoc/>
    /// <remarks>Null: a text-to-image pipeline generates no tokens.</remarks>
    public long? DeclaredPadTokenId => null;

    public IReadOnlyList<InferenceTask> Tasks { get; } = [InferenceTask.TextToImage];

    public IReadOnlyList<string> LabelNames => [];

    public ITextTokenizer? Tokenizer => Source.Tokenizer;

    /// <summary>[B, 77] rows as the pipeline tokenizes them (no attention mask: Stable Diffusion passes none).</summary>
    public TokenBatch Tokenize(IReadOnlyList<string> prompts, InferenceTask task)
    {
        ModelTasks.Require(this, task);
        return new TokenBatch(Source.Tokenizer.Tokenize(prompts), null);
    }

    public void CheckInput(Tensor inputIds, InferenceTask task, GenerationOptions generation)
    {
        ModelTasks.Require(this, task);
        TokenIds.Check(inputIds, Source.TextEncoder.VocabSize, Source.TextEncoder.MaxPositions, "max_position_embeddings");
    }

    /// <summary>The pipeline on each device; rows carry their own options (<see cref="TextToImageRows"/>).</summary>
    public ReplicaModelFactory Replica(InferenceTask task, ScalarType dtype, GenerationOptions generation)
    {
        ModelTasks.Require(this, task);
        return TextToImageReplica.Factory(Source, dtype);
    }

    /// <exception cref="InvalidInputException">Always: text-to-image runs in replica mode.</exception>
    public IStagedModel LoadStaged(InferenceTask task)
    {
        ModelTasks.RequirePipelined(this, task);
        throw new InvalidInputException("pipeline mode does not run text-to-image");
    }
}
