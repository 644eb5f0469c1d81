using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>DDIMScheduler</c> with eta 0 (the pipeline's default: deterministic): the predicted original sample
/// (from epsilon, v or the sample itself; clamped with <c>clip_sample</c>), moved to the previous timestep's alpha
/// (<c>alphas_cumprod[0]</c> or 1 past the last, <c>set_alpha_to_one</c>).
/// </summary>
public sealed class DdimScheduler : DiffusionScheduler
{
    private readonly int _steps;
    private readonly float _finalAlphaCumprod;

    public DdimScheduler(SchedulerConfig config, int steps)
        : base(config)
    {
        _steps = steps;
        _finalAlphaCumprod = config.SetAlphaToOne ? 1f : AlphasCumprod[0];
        var train = config.NumTrainTimesteps;
        Timesteps = config.TimestepSpacing switch
        {
            "linspace" => Linspace(0, train - 1, steps).Select(Round).Reverse().ToList(),
            "leading" => Enumerable.Range(0, steps).Select(i => Round(i * (double)(train / steps))).Reverse().Select(t => t + config.StepsOffset).ToList(),
            _ => Arange(train, 0, -(double)train / steps).Select(t => Round(t) - 1).ToList(),
        };
    }

    public override Tensor Step(Tensor modelOutput, int index, Tensor sample)
    {
        var timestep = (long)Timesteps[index];
        var prevTimestep = timestep - (Config.NumTrainTimesteps / _steps);
        var alphaProdT = AlphasCumprod[timestep];
        var alphaProdTPrev = prevTimestep >= 0 ? AlphasCumprod[prevTimestep] : _finalAlphaCumprod;
        var betaProdT = 1f - alphaProdT;
        Tensor original;
        Tensor epsilon;
        switch (Config.PredictionType)
        {
            case "epsilon":
                original = (sample - (MathF.Sqrt(betaProdT) * modelOutput)) / MathF.Sqrt(alphaProdT);
                epsilon = modelOutput;
                break;
            case "sample":
                original = modelOutput;
                epsilon = (sample - (MathF.Sqrt(alphaProdT) * original)) / MathF.Sqrt(betaProdT);
                break;
            default:
                original = (MathF.Sqrt(alphaProdT) * sample) - (MathF.Sqrt(betaProdT) * modelOutput);
                epsilon = (MathF.Sqrt(alphaProdT) * modelOutput) + (MathF.Sqrt(betaProdT) * sample);
                break;
        }

        if (Config.ClipSample)
        {
            original = original.clamp(-Config.ClipSampleRange, Config.ClipSampleRange);
        }

        var direction = MathF.Sqrt(1f - alphaProdTPrev) * epsilon;
        return (MathF.Sqrt(alphaProdTPrev) * original) + direction;
    }
}
