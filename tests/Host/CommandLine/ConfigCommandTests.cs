using DistributedInference.Actors.Configuration;

namespace DistributedInference.Host.Tests.CommandLine;

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
    }
}
