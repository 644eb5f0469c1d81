namespace DistributedInference.Models.Tasks;

/// <summary>
/// The name under which a model is known across nodes, so a job runs only where its model is: a folder by its name (not
/// its path, which may differ between machines), a built-in by its name and seed (other seeds are other weights).
/// Replica descriptions start with it (<c>identity (task, dtype) on device</c>), and pipeline stage hosts serve under it.
/// </summary>
public static class ModelIdentity
{
    /// <param name="name">A folder path or a built-in name.</param>
    /// <param name="randomSeed">The seed of a built-in's random weights; null for a folder.</param>
    public static string Of(string name, long? randomSeed) =>
        randomSeed is { } seed
            ? $"{name} seed {seed}"
            : Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(name)));

    /// <summary>The description of a replica of that model: <c>identity (task, dtype) on device</c>.</summary>
    public static string Describe(string name, long? randomSeed, InferenceTask task, string dtype, object device) =>
        $"{Of(name, randomSeed)} ({task.Name()}, {dtype}) on {device}";

    /// <summary>
    /// The identity at the start of a replica description (<c>identity (task, dtype) on device</c>); null when the
    /// description has another form (a replica model of the caller's own, say).
    /// </summary>
    public static string? InDescription(string description)
    {
        var on = description.LastIndexOf(" on ", StringComparison.Ordinal);
        var open = on < 0 ? -1 : description.LastIndexOf(" (", on, StringComparison.Ordinal);
        return open <= 0 ? null : description[..open];
    }

    /// <summary>
    /// Whether a replica with that description serves the model of that identity: the one rule by which replica jobs
    /// (library and CLI) pick their devices.
    /// </summary>
    public static bool Serves(string description, string identity) =>
        string.Equals(InDescription(description), identity, StringComparison.Ordinal);
}
