using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// One denoising run's scheduler (diffusers' <c>SchedulerMixin</c> after <c>set_timesteps(n)</c>): the timesteps the
/// UNet is called at, the initial noise scale, the input scaling, and the update from one latent to the next. Holds the
/// state of one run (PNDM keeps past noise predictions): make one per run with <see cref="Create"/>. The noise schedule
/// is computed in float32 as diffusers computes it (<c>betas</c>, <c>alphas_cumprod = cumprod(1 - betas)</c>), and so is
/// each update's arithmetic.
/// </summary>
public abstract class DiffusionScheduler : IDisposable
{
    private protected DiffusionScheduler(SchedulerConfig config)
    {
        Config = config;
        AlphasCumprod = ComputeAlphasCumprod(config);
    }

    /// <summary>The resolved configuration.</summary>
    public SchedulerConfig Config { get; }

    /// <summary><c>alphas_cumprod</c>, float32 values, one per training timestep.</summary>
    public float[] AlphasCumprod { get; }

    /// <summary>The timesteps of each UNet call, in order (integers, or fractions for Euler's linspace spacing).</summary>
    public IReadOnlyList<double> Timesteps { get; private protected set; } = [];

    /// <summary><c>init_noise_sigma</c>: the initial latents (unit Gaussian) are multiplied by it.</summary>
    public virtual float InitNoiseSigma => 1f;

    /// <summary>Makes the scheduler of <paramref name="config"/> and sets its timesteps for <paramref name="steps"/> inference steps.</summary>
    /// <exception cref="InvalidInputException">Fewer than 1 or more than num_train_timesteps steps.</exception>
    public static DiffusionScheduler Create(SchedulerConfig config, int steps)
    {
        if (steps < 1 || steps > config.NumTrainTimesteps)
        {
            throw new InvalidInputException($"--num-inference-steps must be from 1 to num_train_timesteps ({config.NumTrainTimesteps}), got {steps}");
        }

        return config.ClassName switch
        {
            "PNDMScheduler" => new PndmScheduler(config, steps),
            "DDIMScheduler" => new DdimScheduler(config, steps),
            "EulerDiscreteScheduler" => new EulerDiscreteScheduler(config, steps),
            _ => throw new InvalidInputException($"scheduler {config.ClassName} is not supported"),
        };
    }

    /// <summary><c>scale_model_input</c> before UNet call <paramref name="index"/>; the input itself for PNDM and DDIM.</summary>
    /// <returns>A tensor the caller owns (or <paramref name="sample"/> itself).</returns>
    public virtual Tensor ScaleModelInput(Tensor sample, int index) => sample;

    /// <summary>
    /// <c>step(model_output, timesteps[index], sample).prev_sample</c>: the latents after UNet call <paramref name="index"/>.
    /// Calls must come in order, index 0, 1, ... Opens no dispose scope.
    /// </summary>
    /// <param name="modelOutput">The (guided) noise prediction, the sample's shape.</param>
    /// <param name="index">Which call of <see cref="Timesteps"/>.</param>
    /// <param name="sample">The current latents.</param>
    public abstract Tensor Step(Tensor modelOutput, int index, Tensor sample);

    /// <summary>Frees the tensors a run keeps between steps (PNDM's past noise predictions).</summary>
    public virtual void Dispose()
    {
    }

    /// <summary>
    /// <c>np.arange(start, stop, step)</c>: ceil((stop - start) / step) values start + i x step, as numpy counts them.
    /// </summary>
    private protected static double[] Arange(double start, double stop, double step)
    {
        var count = (int)Math.Max(0, Math.Ceiling((stop - start) / step));
        return Enumerable.Range(0, count).Select(i => start + (i * step)).ToArray();
    }

    /// <summary><c>np.linspace(start, stop, count)</c> in float64 (the last value exactly <paramref name="stop"/>).</summary>
    private protected static double[] Linspace(double start, double stop, int count)
    {
        if (count == 1)
        {
            return [start];
        }

        var step = (stop - start) / (count - 1);
        return Enumerable.Range(0, count).Select(i => i == count - 1 ? stop : start + (i * step)).ToArray();
    }

    /// <summary>numpy's round: half to even.</summary>
    private protected static double Round(double x) => Math.Round(x, MidpointRounding.ToEven);

    private static float[] ComputeAlphasCumprod(SchedulerConfig config)
    {
        using var scope = NewDisposeScope();
        var n = config.NumTrainTimesteps;
        Tensor betas;
        if (config.TrainedBetas is { } trained)
        {
            betas = tensor(trained.ToArray(), ScalarType.Float32);
        }
        else
        {
            betas = config.BetaSchedule switch
            {
                "linear" => linspace(config.BetaStart, config.BetaEnd, n, ScalarType.Float32),
                "scaled_linear" => linspace(Math.Sqrt(config.BetaStart), Math.Sqrt(config.BetaEnd), n, ScalarType.Float32).pow(2),
                _ => tensor(CosineBetas(n), ScalarType.Float32),
            };
        }

        return (1.0 - betas).cumprod(0).data<float>().ToArray();
    }

    // betas_for_alpha_bar with the cosine alpha_bar (squaredcos_cap_v2), in float64 as diffusers computes the list.
    private static double[] CosineBetas(int n)
    {
        static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        return Enumerable.Range(0, n).Select(i => Math.Min(1 - (AlphaBar((i + 1.0) / n) / AlphaBar((double)i / n)), 0.999)).ToArray();
    }
}
