using DistributedInference.Actors.Kernel.Settings;

namespace DistributedInference.Host.Tests.CommandLine;

[Collection(ProcessTests.Collection)]
public sealed class ConfigCommandTests
{
    [Fact]
    public async Task Writes_a_default_config_that_config_file_reads_back()
    {
        var path = Path.Combine(Path.GetTempPath(), $"di-config-{Guid.NewGuid():N}.conf");
        try
        {
            var (exit, _, stderr) = await DiRunner.Run("config", "default", "--config-file", path);
            Assert.True(exit == 0, stderr);
            var text = File.ReadAllText(path);
            Assert.Contains("max-batch-size = 8", text, StringComparison.Ordinal);
            Assert.Contains("active-strategy = keep-oldest", text, StringComparison.Ordinal);

            File.WriteAllText(path, text.Replace("max-batch-size = 8", "max-batch-size = 5", StringComparison.Ordinal));
            var config = DistributedInferenceConfig.WithFile(path);
            Assert.Equal(5, DistributedInferenceSettings.From(config).MaxBatchSize);
            Assert.Equal("keep-oldest", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Prints_the_defaults_on_stdout_without_a_file()
    {
        var (exit, stdout, _) = await DiRunner.Run("config", "default");
        Assert.Equal(0, exit);
        Assert.StartsWith("# DistributedInference defaults.", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("serialization-bindings", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("DistributedInferenceSerializer", stdout, StringComparison.Ordinal);
        Assert.True(stdout.Split('\n').Length < 160, "the defaults a user may edit, not the wire format");

        // The bindings still apply: every cross-node message keeps its explicit serializer, and every protocol is listed.
        var config = DistributedInferenceConfig.Default();
        Assert.Contains(config.GetConfig("akka.actor.serialization-bindings").AsEnumerable(), b => b.Key.Contains("IWireMessage", StringComparison.Ordinal));
        Assert.Contains(config.GetStringList("distributed-inference.wire.protocols"), p => p.Contains("ReplicaProtocol", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Env_prints_the_same_version_as_di_version()
    {
        var (exit, version, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "--version");
        Assert.True(exit == 0, stderr);
        var (envExit, env, envStderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(2), "env");
        Assert.True(envExit == 0, envStderr);
        Assert.Equal($"di: {version.Trim()}", env.Split('\n')[0].Trim());
    }
}
