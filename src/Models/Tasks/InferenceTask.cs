namespace DistributedInference.Models.Tasks;

/// <summary>What a job computes for each input row.</summary>
public enum InferenceTask
{
    /// <summary>Language-model logits [T, vocab] of every position.</summary>
    Logits,

    /// <summary>Classification logits [labels] read at the row's last real token.</summary>
    Classify,

    /// <summary>Greedy continuation of the row, prompt included.</summary>
    Generate,
}

public static class InferenceTasks
{
    public static InferenceTask Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "logits" => InferenceTask.Logits,
        "classify" => InferenceTask.Classify,
        "generate" => InferenceTask.Generate,
        _ => throw new InvalidInputException($"unknown task '{text}': use logits, classify or generate"),
    };

    public static string Name(this InferenceTask task) => task.ToString().ToLowerInvariant();
}
