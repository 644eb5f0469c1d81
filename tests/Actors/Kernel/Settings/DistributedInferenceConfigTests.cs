using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Models;

namespace DistributedInference.Actors.Tests.Kernel.Settings;

public sealed class DistributedInferenceConfigTests : IDisposable
{
    private readonly string _file = Path.GetTempFileName();

    public void Dispose() => File.Delete(_file);

    [Fact]
    public void Defaults_declare_a_pinned_device_dispatcher_and_valid_settings()
    {
        var config = DistributedInferenceConfig.Default();
        Assert.Equal("PinnedDispatcher", config.GetString($"{DistributedInferenceConfig.DeviceDispatcher}.type"));
        var settings = DistributedInferenceSettings.From(config);
        Assert.Equal(8, settings.MaxBatchSize);
        Assert.Equal(TimeSpan.FromMinutes(30), settings.JobTimeout);
    }

    [Fact]
    public void A_user_file_overrides_the_defaults_it_names()
    {
        File.WriteAllText(_file, "distributed-inference.max-batch-size = 3");
        var settings = DistributedInferenceSettings.From(DistributedInferenceConfig.WithFile(_file));
        Assert.Equal(3, settings.MaxBatchSize);
        Assert.Equal(TimeSpan.FromMinutes(10), settings.BatchTimeout);
    }

    [Theory]
    [InlineData("distributed-inference.max-batch-size = 0", "must be positive")]
    [InlineData("distributed-inference { max-batch-size = ", "malformed setting")]
    [InlineData("distributed-inference.job-timeout = soon", "malformed setting")]
    public void Bad_settings_fail_fast_with_a_clear_message(string text, string message)
    {
        File.WriteAllText(_file, text);
        var error = Assert.Throws<InvalidInputException>(() => DistributedInferenceSettings.From(DistributedInferenceConfig.WithFile(_file)));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }
}
