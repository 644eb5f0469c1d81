namespace DistributedInference.Models.Tasks;

/// <summary>What a job computes for each input row.</summary>
public enum InferenceTask
{
    /// <summary>Language-model logits [T, vocab] of every position.</summary>
    Logits,

    /// <summary>Classification logits [labels] read at the row's last real token.</summary>
    Classify,

    /// <summary>Continuation of the row (greedy or sampled), prompt included.</summary>
    Generate,

    /// <summary>A sentence embedding [hidden] pooled over the row's real tokens (sentence-transformers models).</summary>
    Embed,
}

public static class InferenceTasks
{
    public static InferenceTask Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "logits" => InferenceTask.Logits,
        "classify" => InferenceTask.Classify,
        "generate" => InferenceTask.Generate,
        "embed" => InferenceTask.Embed,
        _ => throw new InvalidInputException($"unknown task '{text}': use logits, classify, generate or embed"),
    };

    public static string Name(this InferenceTask task) => task.ToString().ToLowerInvariant();
}
