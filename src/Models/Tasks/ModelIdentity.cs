namespace DistributedInference.Models.Tasks;

/// <summary>
/// The name under which a model is known across nodes, so a job runs only where its model is: a folder by its name (not
/// its path, which may differ between machines) and a digest of its <c>config.json</c> and weight index (so two
/// folders both called <c>model</c> are two models), a built-in by its name and seed (other seeds are other weights).
/// Replica descriptions start with it (<c>identity (task, dtype[, generation]) on device</c>), and pipeline stage hosts
/// serve under it.
/// </summary>
public static class ModelIdentity
{
    /// <param name="name">A folder path or a built-in name.</param>
    /// <param name="randomSeed">The seed of a built-in's random weights; null for a folder.</param>
    public static string Of(string name, long? randomSeed) =>
        randomSeed is { } seed
            ? $"{name} seed {seed}"
            : $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(name)))} #{Digest(name)}";

    /// <summary>The description of a replica of that model: <c>identity (task, dtype) on device</c>.</summary>
    public static string Describe(string name, long? randomSeed, InferenceTask task, string dtype, object device) =>
        $"{Of(name, randomSeed)} ({Settings(task, dtype, null)}) on {device}";

    /// <summary>
    /// What a replica computes besides its model, as its description says it: task, dtype and, for generate, the
    /// generation options (a job must ask for the same, since a device generates as it was loaded).
    /// </summary>
    public static string Settings(InferenceTask task, string dtype, Generation.GenerationOptions? generation) =>
        task == InferenceTask.Generate && generation is not null
            ? $"{task.Name()}, {dtype}, {generation.Describe()}"
            : $"{task.Name()}, {dtype}";

    /// <summary>The description of a replica that generates: <c>identity (generate, dtype, options) on device</c>.</summary>
    public static string Describe(string name, long? randomSeed, InferenceTask task, string dtype, Generation.GenerationOptions generation, object device) =>
        $"{Of(name, randomSeed)} ({Settings(task, dtype, generation)}) on {device}";

    // 8 hex digits of SHA-256 over config.json and the weight index (or the single weight file's header), the files
    // a client has too: enough to tell two folders of the same name apart without reading any weight.
    private static string Digest(string folder)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        // A diffusers pipeline folder has no config.json of its own: its index and its components' configs stand for it.
        foreach (var file in new[] { "config.json", "model.safetensors.index.json", "model_index.json", "text_encoder/config.json", "unet/config.json", "vae/config.json", "scheduler/scheduler_config.json" })
        {
            var path = Path.Combine(folder, file);
            if (File.Exists(path))
            {
                hash.AppendData(File.ReadAllBytes(path));
            }
        }

        var single = Path.Combine(folder, "model.safetensors");
        if (File.Exists(single))
        {
            using var stream = File.OpenRead(single);
            var length = new byte[8];
            if (stream.Read(length) == 8)
            {
                var header = new byte[(int)Math.Clamp(BitConverter.ToInt64(length), 0, 1 << 24)];
                stream.ReadExactly(header.AsSpan(0, (int)Math.Min(header.Length, stream.Length - 8)));
                hash.AppendData(header);
            }
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..8];
    }

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
