using System.Security.Cryptography;
using System.Text;
using DistributedInference.Models.Loading;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// Which model a device holds, as the cluster tells models apart: by what the model computes, never by what it is called.
/// A folder is its weights (<see cref="CheckpointDigest"/>: the content of every weight file and the configuration that
/// says how to use them), so a job naming a copy of the nodes' folder under another name or path runs, and a job naming a
/// folder of the same configuration and tensor layout but other weights is refused. A built-in is its name and the seed
/// of its random weights. Equality compares <see cref="WeightsDigest"/> only; <see cref="Name"/> is for people.
/// </summary>
/// <param name="Name">The folder's name (not its path, which differs between machines), or a built-in's name and seed.</param>
/// <param name="WeightsDigest">SHA-256 in 64 lower-case hex digits: of the folder's files, or of a built-in's name and seed.</param>
public sealed record ModelIdentity(string Name, string WeightsDigest)
{
    /// <param name="name">A folder path or a built-in name.</param>
    /// <param name="randomSeed">The seed of a built-in's random weights; null for a folder.</param>
    /// <exception cref="InvalidInputException">A folder that does not exist or cannot be read.</exception>
    public static ModelIdentity Of(string name, long? randomSeed) =>
        randomSeed is { } seed ? BuiltIn(name, seed) : Folder(name);

    /// <summary>A Hugging Face folder, by the digest of its weights and configuration (<see cref="CheckpointDigest.Shared"/>).</summary>
    /// <exception cref="InvalidInputException">A folder that does not exist or cannot be read.</exception>
    public static ModelIdentity Folder(string path) =>
        new(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path))), CheckpointDigest.Shared.Of(path));

    /// <summary>A built-in configuration whose weights are drawn from <paramref name="seed"/>.</summary>
    public static ModelIdentity BuiltIn(string name, long seed) =>
        new($"{name} seed {seed}", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"built-in {name} random weights seed {seed}"))));

    public bool Equals(ModelIdentity? other) => other is not null && string.Equals(WeightsDigest, other.WeightsDigest, StringComparison.Ordinal);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(WeightsDigest);

    /// <summary>The name and the digest's first 8 hex digits: <c>lm #1f2e3d4c</c>.</summary>
    public override string ToString() => $"{Name} #{WeightsDigest[..Math.Min(8, WeightsDigest.Length)]}";
}
