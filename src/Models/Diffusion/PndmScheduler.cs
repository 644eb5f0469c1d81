using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>PNDMScheduler</c> (pseudo numerical methods, Stable Diffusion 1.x's default): with
/// <c>skip_prk_steps</c>, PLMS from the start, where the second call repeats the first timestep and restarts from the
/// first sample with the mean of the two noise predictions, then linear multistep with 2, 3 and 4 past predictions;
/// otherwise Runge-Kutta warm-up steps first. The step past the last timestep goes to alpha 1 or alphas_cumprod[0]
/// (<c>set_alpha_to_one</c>).
/// </summary>
public sealed class PndmScheduler : DiffusionScheduler
{
    private const int PndmOrder = 4;
    private readonly int _steps;
    private readonly float _finalAlphaCumprod;
    private readonly int _prkCount;
    private readonly List<Tensor> _ets = [];
    private Tensor? _curModelOutput;
    private Tensor? _curSample;
    private int _counter;

    public PndmScheduler(SchedulerConfig config, int steps)
        : base(config)
    {
        _steps = steps;
        _finalAlphaCumprod = config.SetAlphaToOne ? 1f : AlphasCumprod[0];
        var train = config.NumTrainTimesteps;
        double[] timesteps = config.TimestepSpacing switch
        {
            "linspace" => Linspace(0, train - 1, steps).Select(Round).ToArray(),
            "leading" => Enumerable.Range(0, steps).Select(i => Round(i * (double)(train / steps)) + config.StepsOffset).ToArray(),
            _ => Arange(train, 0, -(double)train / steps).Select(Round).Reverse().Select(t => (double)(long)t - 1).ToArray(),
        };
        if (config.SkipPrkSteps)
        {
            // _timesteps[:-1], _timesteps[-2:-1], _timesteps[-1:], reversed.
            Timesteps = [.. timesteps.SkipLast(1).Concat(timesteps.SkipLast(1).TakeLast(1)).Append(timesteps[^1]).Reverse()];
        }
        else
        {
            var half = train / steps / 2;
            var prk = timesteps.TakeLast(PndmOrder).SelectMany(t => new[] { t, t }).Select((t, i) => t + (i % 2 == 1 ? half : 0)).ToArray();
            var repeated = prk.SkipLast(1).SelectMany(t => new[] { t, t }).ToArray();
            var prkTimesteps = repeated.Skip(1).SkipLast(1).Reverse().ToArray();
            var plms = timesteps.SkipLast(3).Reverse();
            _prkCount = prkTimesteps.Length;
            Timesteps = [.. prkTimesteps, .. plms];
        }
    }

    public override Tensor Step(Tensor modelOutput, int index, Tensor sample) =>
        _counter < _prkCount && !Config.SkipPrkSteps ? StepPrk(modelOutput, index, sample) : StepPlms(modelOutput, index, sample);

    private Tensor StepPrk(Tensor modelOutput, int index, Tensor sample)
    {
        var train = Config.NumTrainTimesteps;
        var diffToPrev = _counter % 2 == 1 ? 0 : train / _steps / 2;
        var timestep = (long)Timesteps[index];
        var prevTimestep = timestep - diffToPrev;
        timestep = (long)Timesteps[_counter / 4 * 4];
        switch (_counter % 4)
        {
            case 0:
                Replace(ref _curModelOutput, Accumulate(modelOutput * (1.0 / 6)));
                _ets.Add(Keep(modelOutput));
                Replace(ref _curSample, Keep(sample));
                break;
            case 1:
            case 2:
                Replace(ref _curModelOutput, Accumulate(modelOutput * (1.0 / 3)));
                break;
            default:
                modelOutput = _curModelOutput! + (modelOutput * (1.0 / 6));
                Replace(ref _curModelOutput, null);
                break;
        }

        var previous = PreviousSample(_curSample ?? sample, timestep, prevTimestep, modelOutput);
        _counter++;
        return previous;
    }

    private Tensor Accumulate(Tensor term) => Keep(_curModelOutput is null ? term : _curModelOutput + term);

    private Tensor StepPlms(Tensor modelOutput, int index, Tensor sample)
    {
        var train = Config.NumTrainTimesteps;
        var timestep = (long)Timesteps[index];
        var prevTimestep = timestep - (train / _steps);
        if (_counter != 1)
        {
            while (_ets.Count > 3)
            {
                _ets[0].Dispose();
                _ets.RemoveAt(0);
            }

            _ets.Add(Keep(modelOutput));
        }
        else
        {
            prevTimestep = timestep;
            timestep += train / _steps;
        }

        if (_ets.Count == 1 && _counter == 0)
        {
            Replace(ref _curSample, Keep(sample));
        }
        else if (_ets.Count == 1 && _counter == 1)
        {
            modelOutput = (modelOutput + _ets[^1]) / 2;
            sample = _curSample!.detach();
            Replace(ref _curSample, null);
        }
        else if (_ets.Count == 2)
        {
            modelOutput = ((3 * _ets[^1]) - _ets[^2]) / 2;
        }
        else if (_ets.Count == 3)
        {
            modelOutput = ((23 * _ets[^1]) - (16 * _ets[^2]) + (5 * _ets[^3])) / 12;
        }
        else
        {
            modelOutput = (1.0 / 24) * ((55 * _ets[^1]) - (59 * _ets[^2]) + (37 * _ets[^3]) - (9 * _ets[^4]));
        }

        var previous = PreviousSample(sample, timestep, prevTimestep, modelOutput);
        _counter++;
        return previous;
    }

    public override void Dispose()
    {
        foreach (var e in _ets)
        {
            e.Dispose();
        }

        _ets.Clear();
        Replace(ref _curSample, null);
        Replace(ref _curModelOutput, null);
    }

    // A handle of its own on a tensor of the caller's step, kept across steps (outside every dispose scope).
    private static Tensor Keep(Tensor tensor) => tensor.detach().DetachFromDisposeScope();

    private static void Replace(ref Tensor? field, Tensor? value)
    {
        if (!ReferenceEquals(field, value))
        {
            field?.Dispose();
        }

        field = value;
    }

    // _get_prev_sample: formula (9) of the PNDM paper, in float32.
    private Tensor PreviousSample(Tensor sample, long timestep, long prevTimestep, Tensor modelOutput)
    {
        var alphaProdT = AlphasCumprod[timestep];
        var alphaProdTPrev = prevTimestep >= 0 ? AlphasCumprod[prevTimestep] : _finalAlphaCumprod;
        var betaProdT = 1f - alphaProdT;
        var betaProdTPrev = 1f - alphaProdTPrev;
        if (Config.PredictionType == "v_prediction")
        {
            modelOutput = (MathF.Sqrt(alphaProdT) * modelOutput) + (MathF.Sqrt(betaProdT) * sample);
        }

        var sampleCoeff = MathF.Sqrt(alphaProdTPrev / alphaProdT);
        var denominator = (alphaProdT * MathF.Sqrt(betaProdTPrev)) + MathF.Sqrt(alphaProdT * betaProdT * alphaProdTPrev);
        return (sampleCoeff * sample) - ((alphaProdTPrev - alphaProdT) * modelOutput / denominator);
    }
}
