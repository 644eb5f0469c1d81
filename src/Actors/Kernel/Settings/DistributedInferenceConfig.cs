using System.Reflection;
using Akka.Configuration;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Settings;

/// <summary>The HOCON defaults under <c>hocon/</c>, embedded in this assembly, and user files layered on top.</summary>
public static class DistributedInferenceConfig
{
    public const string DeviceDispatcher = "akka.actor.device-dispatcher";

    /// <summary>
    /// The dispatcher (dedicated threads, hocon/distributed-inference.conf) of the actors that join results with bulk
    /// tensor copies: job and pipeline coordinators. It keeps that work off the pool that carries cluster heartbeats.
    /// </summary>
    public const string ComputeDispatcher = "akka.actor.compute-dispatcher";

    // Ours over the wire format (serializer bindings), which di config default leaves out: no user should edit it.
    private static readonly Lazy<Config> Defaults = new(() =>
        ConfigurationFactory.ParseString(ReadEmbedded("distributed-inference.conf")).WithFallback(ConfigurationFactory.ParseString(ReadEmbedded("serialization.conf"))));
    private static readonly Lazy<Config> ClusterDefaults = new(() => ConfigurationFactory.ParseString(ReadEmbedded("cluster.conf")));

    /// <summary>
    /// The commented default files (ours, then the cluster's), as <c>di config default</c> writes them: the settings a
    /// user may change, without the serializer bindings (hocon/serialization.conf, always applied).
    /// </summary>
    public static string DefaultText() =>
        $"# DistributedInference defaults. Edit, then pass with --config-file; keys left out keep these values.{Environment.NewLine}{Environment.NewLine}" +
        ReadEmbedded("distributed-inference.conf") + Environment.NewLine + ReadEmbedded("cluster.conf");

    /// <summary>Our defaults (dispatchers, our own settings) over the serializer bindings.</summary>
    public static Config Default() => Defaults.Value;

    /// <summary>
    /// A cluster node's configuration: listen on <paramref name="host"/>:<paramref name="port"/> (0 = any free port),
    /// with these roles and seed nodes (<c>akka.tcp://system@host:port</c>), over the user's
    /// <paramref name="configFile"/> (if any), over the cluster defaults and ours. The arguments win over the file (a
    /// file from <c>di config default</c> holds hostname and port too); with no seed nodes given, the file's count.
    /// <paramref name="overDefaults"/> lies beneath the file and over the cluster defaults.
    /// </summary>
    /// <exception cref="InvalidInputException">The file is missing or not valid HOCON.</exception>
    public static Config Cluster(string host, int port, IEnumerable<string> roles, IEnumerable<string>? seeds = null, string? configFile = null, Config? overDefaults = null)
    {
        static string List(IEnumerable<string> items) => "[" + string.Join(", ", items.Select(i => $"\"{i}\"")) + "]";
        var seedList = seeds?.ToList() ?? [];
        var node = ConfigurationFactory.ParseString($$"""
            akka.remote.dot-netty.tcp.hostname = "{{host}}"
            akka.remote.dot-netty.tcp.port = {{port}}
            akka.cluster.roles = {{List(roles)}}
            {{(seedList.Count > 0 ? $"akka.cluster.seed-nodes = {List(seedList)}" : string.Empty)}}
            """);
        var file = configFile is null ? null : ReadFile(configFile);
        var defaults = overDefaults is null ? ClusterDefaults.Value : overDefaults.WithFallback(ClusterDefaults.Value);
        return (file is null ? node : node.WithFallback(file)).WithFallback(defaults).WithFallback(Default());
    }

    /// <summary>A user's HOCON file over the defaults; a missing or malformed file is a clear error.</summary>
    public static Config WithFile(string? path)
    {
        return path is null ? Default() : ReadFile(path).WithFallback(Default());
    }

    private static Config ReadFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"--config-file {path}: no such file");
        }

        try
        {
            return ConfigurationFactory.ParseString(File.ReadAllText(path));
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
