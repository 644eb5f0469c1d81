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

    /// <summary>An image uint8 [H, W, 3] generated from the row's prompt (Stable Diffusion pipelines).</summary>
    TextToImage,
}

public static class InferenceTasks
{
    public static InferenceTask Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "logits" => InferenceTask.Logits,
        "classify" => InferenceTask.Classify,
        "generate" => InferenceTask.Generate,
        "embed" => InferenceTask.Embed,
        "text-to-image" => InferenceTask.TextToImage,
        _ => throw new InvalidInputException($"unknown task '{text}': use logits, classify, generate, embed or text-to-image"),
    };

    public static string Name(this InferenceTask task) => task == InferenceTask.TextToImage ? "text-to-image" : task.ToString().ToLowerInvariant();
}
