using DistributedInference.Models;

namespace DistributedInference.Host.Inference;

/// <summary>How <c>di infer</c> spreads a model over devices (<c>--mode</c>).</summary>
public enum Mode
{
    /// <summary>Every device holds the whole model and gets a share of the rows (accelerate's split_between_processes).</summary>
    Replica,

    /// <summary>The model is cut into one stage per device and micro-batches flow through them (accelerate's prepare_pippy).</summary>
    Pipeline,
}

/// <summary>Names of <see cref="Mode"/>, as <c>--mode</c> takes them.</summary>
public static class Modes
{
    /// <summary><c>replica</c> or <c>pipeline</c>.</summary>
    /// <exception cref="InvalidInputException">Another name (one line).</exception>
    public static Mode Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "replica" => Mode.Replica,
        "pipeline" => Mode.Pipeline,
        _ => throw new InvalidInputException($"unknown mode '{text}': use replica or pipeline"),
    };

    /// <summary><c>replica</c> or <c>pipeline</c>.</summary>
    public static string Name(this Mode mode) => mode == Mode.Pipeline ? "pipeline" : "replica";
}
