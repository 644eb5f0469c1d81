using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>EulerDiscreteScheduler</c> (Karras et al.'s Algorithm 2 without churn, as the pipeline calls it):
/// sigmas sqrt((1 - alphas_cumprod) / alphas_cumprod) interpolated linearly at the (possibly fractional) timesteps, then
/// 0 (or sigma_min); the input divided by sqrt(sigma^2 + 1); one Euler step per call. <c>init_noise_sigma</c> is
/// sigma_max for linspace/trailing spacing and sqrt(sigma_max^2 + 1) for leading.
/// </summary>
public sealed class EulerDiscreteScheduler : DiffusionScheduler
{
    private readonly float[] _sigmas;

    public EulerDiscreteScheduler(SchedulerConfig config, int steps)
        : base(config)
    {
        var train = config.NumTrainTimesteps;
        var timesteps = config.TimestepSpacing switch
        {
            "linspace" => Linspace(0, train - 1, steps).Reverse().Select(t => (double)(float)t).ToArray(),
            "leading" => Enumerable.Range(0, steps).Select(i => Round(i * (double)(train / steps))).Reverse().Select(t => (double)(float)(t + config.StepsOffset)).ToArray(),
            _ => Arange(train, 0, -(double)train / steps).Select(t => (double)(float)Round(t) - 1).ToArray(),
        };
        Timesteps = timesteps;

        // Training sigmas in float32 (computed on the alphas_cumprod tensor), interpolated in float64 (np.interp).
        using (var scope = NewDisposeScope())
        {
            var cumprod = tensor(AlphasCumprod);
            var trainSigmas = ((1.0 - cumprod) / cumprod).pow(0.5).data<float>().ToArray();
            var last = config.FinalSigmasType == "zero" ? 0f : trainSigmas[0];
            _sigmas = [.. timesteps.Select(t => (float)Interpolate(t, trainSigmas)), last];
        }
    }

    /// <summary>The sigmas of each call, then the final one (float32).</summary>
    public IReadOnlyList<float> Sigmas => _sigmas;

    public override float InitNoiseSigma
    {
        get
        {
            var max = _sigmas.Max();
            return Config.TimestepSpacing is "linspace" or "trailing" ? max : MathF.Sqrt((max * max) + 1f);
        }
    }

    public override Tensor ScaleModelInput(Tensor sample, int index)
    {
        var sigma = _sigmas[index];
        return sample / MathF.Sqrt((sigma * sigma) + 1f);
    }

    public override Tensor Step(Tensor modelOutput, int index, Tensor sample)
    {
        var dtype = modelOutput.dtype;
        var x = sample.to(ScalarType.Float32);
        var sigma = _sigmas[index];
        var original = Config.PredictionType switch
        {
            "epsilon" => x - (sigma * modelOutput),
            "sample" => modelOutput.to(ScalarType.Float32),
            _ => (modelOutput * (-sigma / MathF.Sqrt((sigma * sigma) + 1f))) + (x / ((sigma * sigma) + 1f)),
        };
        var derivative = (x - original) / sigma;
        var dt = _sigmas[index + 1] - sigma;
        return (x + (derivative * dt)).to(dtype);
    }

    // np.interp(t, arange(len(fp)), fp): linear between the two neighbouring integer timesteps.
    private static double Interpolate(double t, float[] fp)
    {
        if (t <= 0)
        {
            return fp[0];
        }

        if (t >= fp.Length - 1)
        {
            return fp[^1];
        }

        var j = (int)Math.Floor(t);
        var slope = ((double)fp[j + 1] - fp[j]) / 1.0;
        return (slope * (t - j)) + fp[j];
    }
}
