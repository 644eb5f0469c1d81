using System.Reflection;
using Akka.Configuration;
using DistributedInference.Models;

namespace DistributedInference.Actors.Configuration;

/// <summary>The HOCON defaults under <c>hocon/</c>, embedded in this assembly, and user files layered on top.</summary>
public static class DistributedInferenceConfig
{
    public const string DeviceDispatcher = "akka.actor.device-dispatcher";

    private static readonly Lazy<Config> Defaults = new(() => ConfigurationFactory.ParseString(ReadEmbedded("distributed-inference.conf")));

    /// <summary>Our defaults (dispatchers, serializers, our own settings).</summary>
    public static Config Default() => Defaults.Value;

    /// <summary>A user's HOCON file over the defaults; a missing or malformed file is a clear error.</summary>
    public static Config WithFile(string? path)
    {
        if (path is null)
        {
            return Default();
        }

        if (!File.Exists(path))
        {
            throw new InvalidInputException($"--config-file {path}: no such file");
        }

        try
        {
            return ConfigurationFactory.ParseString(File.ReadAllText(path)).WithFallback(Default());
        }
        catch (Exception e) when (e is ConfigurationException or FormatException or ArgumentException or InvalidOperationException)
        {
            throw new InvalidInputException($"--config-file {path}: not valid HOCON ({e.Message.Split('\n', 2)[0]})", e);
        }
    }

    private static string ReadEmbedded(string name)
    {
        var resource = $"DistributedInference.hocon.{name}";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"embedded configuration {resource} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
