using System.Text.Json.Nodes;
using DistributedInference.Models.Diffusion;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Diffusion;

/// <summary>Schedulers configured as <c>X.from_config(pipe.scheduler.config)</c>, against the fixture and diffusers' own tests.</summary>
public sealed class SchedulerTests
{
    private static string PipelineConfig => Path.Combine(SdTinyFixture.Model, "scheduler", "scheduler_config.json");

    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public SchedulerTests(Xunit.Abstractions.ITestOutputHelper output)
    {
        _output = output;
        Models.Runtime.LibTorch.Initialize();
    }

    [Theory]
    [InlineData("pndm", "PNDMScheduler")]
    [InlineData("ddim", "DDIMScheduler")]
    [InlineData("euler", "EulerDiscreteScheduler")]
    public void From_config_of_the_pipeline_file_equals_the_fixture_resolved_config(string name, string className)
    {
        var resolved = SchedulerConfig.FromConfig(PipelineConfig, SchedulerConfig.ClassNames[name]);
        var expected = SchedulerConfig.FromConfig(Path.Combine(SdTinyFixture.Root, "scheduler_configs", $"{className}.json"));
        Assert.Equal(expected with { TrainedBetas = null }, resolved with { TrainedBetas = null });
        Assert.Equal(name == "euler" ? "linspace" : "leading", resolved.TimestepSpacing);
    }

    [Fact]
    public void Alphas_cumprod_equals_the_fixture()
    {
        using var scheduler = DiffusionScheduler.Create(SchedulerConfig.FromConfig(PipelineConfig), 4);
        using var actual = tensor(scheduler.AlphasCumprod);
        var diff = Fixtures.AssertClose(SdTinyFixture.Expected("alphas_cumprod"), actual, 1e-7);
        _output.WriteLine($"alphas_cumprod max |diff| {diff:E2}; [999] {scheduler.AlphasCumprod[999]:R} vs {SdTinyFixture.Expected("alphas_cumprod")[999].ToSingle():R}");
    }

    [Theory]
    [InlineData("pndm", 4)]
    [InlineData("ddim", 3)]
    [InlineData("euler", 3)]
    public void Timesteps_and_init_noise_sigma_equal_the_fixture(string name, int steps)
    {
        using var scheduler = DiffusionScheduler.Create(SchedulerConfig.FromConfig(PipelineConfig, SchedulerConfig.ClassNames[name]), steps);
        using var timesteps = tensor(scheduler.Timesteps.ToArray());
        Fixtures.AssertClose(SdTinyFixture.Expected($"{name}_timesteps"), timesteps, 0);
        var expectedSigma = SdTinyFixture.Expected($"{name}_init_noise_sigma").ToSingle();
        _output.WriteLine($"init_noise_sigma {scheduler.InitNoiseSigma:R} vs {expectedSigma:R}");
        // alphas_cumprod[999] of libtorch 2.10 and of the fixture's torch 1.13 differ in the last bit (5.96e-8 at most):
        // sigma_max = sqrt((1 - a) / a) moves by about 1e-7 of itself.
        Assert.Equal(expectedSigma, scheduler.InitNoiseSigma, 1e-6 * expectedSigma);
        if (scheduler is EulerDiscreteScheduler euler)
        {
            using var sigmas = tensor(euler.Sigmas.ToArray());
            Fixtures.AssertClose(SdTinyFixture.Expected("euler_sigmas"), sigmas, 1e-6 * expectedSigma);
        }
    }

    [Fact]
    public void Pndm_with_runge_kutta_steps_gives_diffusers_test_steps_offset_timesteps()
    {
        // diffusers tests/schedulers/test_scheduler_pndm.py test_steps_offset: linear betas, steps_offset 1, 10 steps.
        var config = SchedulerConfig.Defaults("PNDMScheduler") with { StepsOffset = 1 };
        using var scheduler = DiffusionScheduler.Create(config, 10);
        Assert.Equal([901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1], scheduler.Timesteps.Select(t => (int)t));
    }

    [Fact]
    public void Ddim_gives_diffusers_test_steps_offset_timesteps()
    {
        var config = SchedulerConfig.Defaults("DDIMScheduler") with { StepsOffset = 1 };
        using var scheduler = DiffusionScheduler.Create(config, 5);
        Assert.Equal([801, 601, 401, 201, 1], scheduler.Timesteps.Select(t => (int)t));
    }

    [Fact]
    public void Euler_with_leading_spacing_in_the_file_offsets_timesteps_and_scales_init_noise()
    {
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(PipelineConfig))!;
        json["timestep_spacing"] = "leading";
        using var scheduler = DiffusionScheduler.Create(SchedulerConfig.FromConfig("scheduler_config.json", json, "EulerDiscreteScheduler"), 3);
        Assert.Equal([667.0, 334.0, 1.0], scheduler.Timesteps);
        var sigmaMax = ((EulerDiscreteScheduler)scheduler).Sigmas.Max();
        Assert.Equal(MathF.Sqrt((sigmaMax * sigmaMax) + 1), scheduler.InitNoiseSigma);
    }

    [Fact]
    public void Unknown_scheduler_names_and_options_are_one_line_errors()
    {
        var error = Assert.Throws<InvalidInputException>(() => SdTinyFixture.Source.Scheduler("lms"));
        Assert.Equal("unknown scheduler 'lms': use pndm, ddim, euler", error.Message);
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(PipelineConfig))!;
        json["timestep_spacing"] = "sideways";
        error = Assert.Throws<InvalidInputException>(() => SchedulerConfig.FromConfig("scheduler_config.json", json, "DDIMScheduler"));
        Assert.Contains("timestep_spacing 'sideways' is not supported", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }
}
