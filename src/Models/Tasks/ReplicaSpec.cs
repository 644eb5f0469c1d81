using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// What a replica serves: the model (its weights, <see cref="ModelIdentity"/>), the task, the precision and, for generate,
/// how it decodes. A device computes as it was loaded, so a job asking for other settings would silently get these:
/// jobs compare this value, never a description's text. Equal specs compare equal (the model by its weights, generation
/// options as <see cref="GenerationOptions.Decoding"/> leaves them).
/// </summary>
public sealed record ReplicaSpec
{
    /// <param name="generation">How a generate replica decodes; null for other tasks, and for a replica that takes its
    /// decoding options with each request (<see cref="Serving.ServingReplica"/>).</param>
    public ReplicaSpec(ModelIdentity model, InferenceTask task, Precision precision, GenerationOptions? generation = null)
    {
        Model = model;
        Task = task;
        Precision = precision;
        Generation = task == InferenceTask.Generate ? generation?.Decoding() : null;
    }

    public ModelIdentity Model { get; }

    public InferenceTask Task { get; }

    public Precision Precision { get; }

    /// <summary>How a generate replica decodes (<see cref="GenerationOptions.Decoding"/>); null otherwise.</summary>
    public GenerationOptions? Generation { get; }

    /// <summary>Task, precision and decoding as a description states them: <c>generate, fp32, max_new_tokens 20, greedy</c>.</summary>
    public string Settings => Generation is { } generation
        ? $"{Task.Name()}, {Precision.Name()}, {generation.Describe()}"
        : $"{Task.Name()}, {Precision.Name()}";

    /// <summary>A replica's description: <c>lm #1f2e3d4c (logits, fp32) on cpu</c>.</summary>
    public string On(object device) => $"{this} on {device}";

    /// <summary><c>lm #1f2e3d4c (logits, fp32)</c>.</summary>
    public override string ToString() => $"{Model} ({Settings})";
}
