using DistributedInference.Models.Generation;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Auto;

/// <summary>
/// A model a job names, whatever its family: a Hugging Face folder (the family read from <c>config.json</c>'s
/// <c>model_type</c>, as transformers' <c>AutoConfig</c> does) or a built-in configuration with seeded random weights.
/// It says what the model can do and builds what each mode runs: a replica per device, or a staged view to cut.
/// Nothing is loaded until <see cref="Replica"/>'s factory or <see cref="LoadStaged"/> is called.
/// </summary>
public interface IModelSource
{
    /// <summary>The folder path or built-in name the user gave.</summary>
    string Name { get; }

    /// <summary><c>model_type</c>: gpt2, llama, mistral, qwen2, qwen3 or bert.</summary>
    string ModelType { get; }

    /// <summary>Seed of the random weights of a built-in; null for a folder's trained weights.</summary>
    long? RandomSeed { get; }

    /// <summary>Rows of the embedding matrix: the exclusive upper bound of a valid token id.</summary>
    int VocabSize { get; }

    /// <summary>The id that pads rows (config's pad token, else its end-of-sequence token, else 0).</summary>
    long PadTokenId { get; }

    /// <summary>
    /// <c>pad_token_id</c> as the checkpoint declares it (generation_config.json's, else config.json's), null when it
    /// declares none: <c>generate</c> treats it as padding in ids given without a mask (<see cref="GenerationMask"/>).
    /// </summary>
    long? DeclaredPadTokenId { get; }

    /// <summary>Ids that end a generated sequence (config.json and generation_config.json together); may be empty.</summary>
    IReadOnlyList<long> EosTokenIds { get; }

    /// <summary>The tasks this model runs (decoders: logits, generate; GPT-2 also classify; BERT: embed).</summary>
    IReadOnlyList<InferenceTask> Tasks { get; }

    /// <summary>Class names of a classifier, index = label id; empty otherwise.</summary>
    IReadOnlyList<string> LabelNames { get; }

    /// <summary>The model's tokenizer, or null when it has none (a built-in or a folder without tokenizer files).</summary>
    ITextTokenizer? Tokenizer { get; }

    /// <summary>
    /// Prompts as padded token rows, the way this family's reference tokenizes them for <paramref name="task"/>: on the
    /// left for generate, on the right otherwise (BERT: [CLS] ... [SEP], truncated to max_seq_length).
    /// </summary>
    /// <exception cref="InvalidInputException">The model has no tokenizer, or a prompt has no tokens.</exception>
    TokenBatch Tokenize(IReadOnlyList<string> prompts, InferenceTask task);

    /// <summary>
    /// Checks token rows before any device work: the task is one of <see cref="Tasks"/>, ids inside the vocabulary,
    /// length (plus the tokens to generate) inside the model's positions.
    /// </summary>
    /// <param name="inputIds">[B, T] int64 on the CPU.</param>
    /// <exception cref="InvalidInputException">With one line naming what is wrong.</exception>
    void CheckInput(Tensor inputIds, InferenceTask task, GenerationOptions generation);

    /// <summary>Builds this model on a device for a task; the factory runs on each device actor's own thread.</summary>
    ReplicaModelFactory Replica(InferenceTask task, ScalarType dtype, GenerationOptions generation);

    /// <summary>The staged view a pipeline cuts for <paramref name="task"/>, on the CPU; the caller disposes it.</summary>
    /// <exception cref="InvalidInputException">The task does not run in pipeline mode for this family.</exception>
    IStagedModel LoadStaged(InferenceTask task);
}
