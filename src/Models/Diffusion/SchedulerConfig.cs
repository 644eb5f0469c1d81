using System.Text.Json.Nodes;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// A scheduler's configuration as diffusers resolves it: <c>X.from_config(pipe.scheduler.config)</c> keeps the keys the
/// pipeline's <c>scheduler_config.json</c> wrote that X takes, and gives every other key X's own default (a key the file
/// left out, even one the file's own class would have defaulted, such as <c>timestep_spacing</c>, takes X's default:
/// "linspace" for Euler, "leading" for PNDM and DDIM). Loading the file's own class is the same rule.
/// </summary>
public sealed record SchedulerConfig
{
    /// <summary>The schedulers this runtime runs, by diffusers class name and by their <c>--scheduler</c> names.</summary>
    public static IReadOnlyDictionary<string, string> ClassNames { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["pndm"] = "PNDMScheduler",
        ["ddim"] = "DDIMScheduler",
        ["euler"] = "EulerDiscreteScheduler",
    };

    /// <summary>Which scheduler: PNDMScheduler, DDIMScheduler or EulerDiscreteScheduler.</summary>
    public string ClassName { get; init; } = "PNDMScheduler";

    /// <summary><c>num_train_timesteps</c>.</summary>
    public int NumTrainTimesteps { get; init; } = 1000;

    /// <summary><c>beta_start</c>.</summary>
    public double BetaStart { get; init; } = 0.0001;

    /// <summary><c>beta_end</c>.</summary>
    public double BetaEnd { get; init; } = 0.02;

    /// <summary><c>beta_schedule</c>: linear, scaled_linear or squaredcos_cap_v2.</summary>
    public string BetaSchedule { get; init; } = "linear";

    /// <summary><c>trained_betas</c>, when given, instead of the schedule.</summary>
    public IReadOnlyList<double>? TrainedBetas { get; init; }

    /// <summary><c>prediction_type</c>: epsilon or v_prediction (and sample for DDIM and Euler).</summary>
    public string PredictionType { get; init; } = "epsilon";

    /// <summary><c>timestep_spacing</c>: linspace, leading or trailing.</summary>
    public string TimestepSpacing { get; init; } = "leading";

    /// <summary><c>steps_offset</c>: added to "leading" timesteps.</summary>
    public int StepsOffset { get; init; }

    /// <summary><c>set_alpha_to_one</c> (PNDM, DDIM): the step past the last goes to alpha 1, else alphas_cumprod[0].</summary>
    public bool SetAlphaToOne { get; init; }

    /// <summary><c>skip_prk_steps</c> (PNDM): PLMS only (the SD setting), else Runge-Kutta warm-up steps first.</summary>
    public bool SkipPrkSteps { get; init; }

    /// <summary><c>clip_sample</c> (DDIM): the predicted original sample is clamped to <see cref="ClipSampleRange"/>.</summary>
    public bool ClipSample { get; init; }

    /// <summary><c>clip_sample_range</c> (DDIM).</summary>
    public double ClipSampleRange { get; init; } = 1.0;

    /// <summary><c>interpolation_type</c> (Euler): only linear.</summary>
    public string InterpolationType { get; init; } = "linear";

    /// <summary><c>final_sigmas_type</c> (Euler): zero or sigma_min.</summary>
    public string FinalSigmasType { get; init; } = "zero";

    /// <summary>Class defaults of diffusers' scheduler <paramref name="className"/>.</summary>
    /// <exception cref="InvalidInputException">Not one of the three schedulers.</exception>
    public static SchedulerConfig Defaults(string className) => className switch
    {
        "PNDMScheduler" => new SchedulerConfig { ClassName = className, TimestepSpacing = "leading", SetAlphaToOne = false, SkipPrkSteps = false },
        "DDIMScheduler" => new SchedulerConfig { ClassName = className, TimestepSpacing = "leading", SetAlphaToOne = true, ClipSample = true },
        "EulerDiscreteScheduler" => new SchedulerConfig { ClassName = className, TimestepSpacing = "linspace" },
        _ => throw new InvalidInputException($"scheduler {className} is not supported (supported: {string.Join(", ", ClassNames.Values)}; --scheduler {string.Join("|", ClassNames.Keys)})"),
    };

    /// <summary>The init keys of each scheduler class, as diffusers declares them.</summary>
    public static IReadOnlyList<string> InitKeys(string className) => className switch
    {
        "PNDMScheduler" => [.. Common, "skip_prk_steps", "set_alpha_to_one", "prediction_type", "timestep_spacing", "steps_offset"],
        "DDIMScheduler" => [.. Common, "clip_sample", "set_alpha_to_one", "steps_offset", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
            "clip_sample_range", "sample_max_value", "timestep_spacing", "rescale_betas_zero_snr"],
        "EulerDiscreteScheduler" => [.. Common, "prediction_type", "interpolation_type", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
            "sigma_min", "sigma_max", "timestep_spacing", "timestep_type", "steps_offset", "rescale_betas_zero_snr", "final_sigmas_type"],
        _ => [],
    };

    private static readonly string[] Common = ["num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas"];

    /// <summary>
    /// <c>X.from_config(config)</c> for X = <paramref name="className"/> (null: the file's own <c>_class_name</c>).
    /// </summary>
    /// <param name="path">The pipeline's <c>scheduler/scheduler_config.json</c>.</param>
    /// <exception cref="InvalidInputException">A missing or malformed file, an unsupported scheduler or option (one line).</exception>
    public static SchedulerConfig FromConfig(string path, string? className = null) => FromConfig(ConfigJson.Load(path), className);

    /// <summary>As <see cref="FromConfig(string, string?)"/>, on a parsed config; <paramref name="source"/> names it in errors.</summary>
    public static SchedulerConfig FromConfig(string source, JsonObject json, string? className = null) => FromConfig(ConfigJson.Of(source, json), className);

    internal static SchedulerConfig FromConfig(ConfigJson json, string? className)
    {
        var target = className ?? json.String("_class_name")
            ?? throw new InvalidInputException($"{json.Source}: no _class_name (name the scheduler with --scheduler {string.Join("|", ClassNames.Keys)})");
        var d = Defaults(target);
        var keys = InitKeys(target);
        int Int(string key, int fallback) => keys.Contains(key) ? json.Int(key) ?? fallback : fallback;
        double Double(string key, double fallback) => keys.Contains(key) ? json.Double(key) ?? fallback : fallback;
        bool Bool(string key, bool fallback) => keys.Contains(key) ? json.Bool(key) ?? fallback : fallback;
        string Text(string key, string fallback) => keys.Contains(key) ? json.String(key) ?? fallback : fallback;

        foreach (var (key, allowed) in new[]
        {
            ("thresholding", false), ("use_karras_sigmas", false), ("use_exponential_sigmas", false), ("use_beta_sigmas", false), ("rescale_betas_zero_snr", false),
        })
        {
            if (keys.Contains(key) && json.Bool(key) is { } value && value != allowed)
            {
                throw json.Unsupported(key, $"{allowed.ToString().ToLowerInvariant()} for {target}");
            }
        }

        if (keys.Contains("timestep_type") && json.String("timestep_type") is { } type && type != "discrete")
        {
            throw json.Unsupported("timestep_type", "discrete");
        }

        if (keys.Contains("sigma_min") && (json.Has("sigma_min") || json.Has("sigma_max")))
        {
            throw json.Unsupported(json.Has("sigma_min") ? "sigma_min" : "sigma_max", "null for EulerDiscreteScheduler");
        }

        IReadOnlyList<double>? trained = null;
        if (json.Json["trained_betas"] is JsonArray betas)
        {
            trained = betas.Select(b => b is JsonValue v && v.TryGetValue<double>(out var x) ? x : throw json.Malformed("trained_betas", betas, "a list of numbers")).ToList();
        }

        var config = new SchedulerConfig
        {
            ClassName = target,
            NumTrainTimesteps = Int("num_train_timesteps", d.NumTrainTimesteps),
            BetaStart = Double("beta_start", d.BetaStart),
            BetaEnd = Double("beta_end", d.BetaEnd),
            BetaSchedule = Text("beta_schedule", d.BetaSchedule),
            TrainedBetas = trained,
            PredictionType = Text("prediction_type", d.PredictionType),
            TimestepSpacing = Text("timestep_spacing", d.TimestepSpacing),
            StepsOffset = Int("steps_offset", d.StepsOffset),
            SetAlphaToOne = Bool("set_alpha_to_one", d.SetAlphaToOne),
            SkipPrkSteps = Bool("skip_prk_steps", d.SkipPrkSteps),
            ClipSample = Bool("clip_sample", d.ClipSample),
            ClipSampleRange = Double("clip_sample_range", d.ClipSampleRange),
            InterpolationType = Text("interpolation_type", d.InterpolationType),
            FinalSigmasType = Text("final_sigmas_type", d.FinalSigmasType),
        };
        return config.Validate(json.Source);
    }

    /// <summary>Fails with one line naming the first value the scheduler cannot run; returns the config itself.</summary>
    public SchedulerConfig Validate(string source)
    {
        InvalidInputException Bad(string key, object value, string supported) => new($"{source}: {key} '{value}' is not supported for {ClassName} ({supported})");

        if (BetaSchedule is not ("linear" or "scaled_linear" or "squaredcos_cap_v2") && TrainedBetas is null)
        {
            throw Bad("beta_schedule", BetaSchedule, "linear, scaled_linear, squaredcos_cap_v2");
        }

        if (TimestepSpacing is not ("linspace" or "leading" or "trailing"))
        {
            throw Bad("timestep_spacing", TimestepSpacing, "linspace, leading, trailing");
        }

        var predictions = ClassName == "PNDMScheduler" ? new[] { "epsilon", "v_prediction" } : ["epsilon", "v_prediction", "sample"];
        if (!predictions.Contains(PredictionType))
        {
            throw Bad("prediction_type", PredictionType, string.Join(", ", predictions));
        }

        if (InterpolationType != "linear")
        {
            throw Bad("interpolation_type", InterpolationType, "linear");
        }

        if (FinalSigmasType is not ("zero" or "sigma_min"))
        {
            throw Bad("final_sigmas_type", FinalSigmasType, "zero, sigma_min");
        }

        if (NumTrainTimesteps < 2 || (TrainedBetas is { } betas && betas.Count != NumTrainTimesteps))
        {
            throw new InvalidInputException($"{source}: num_train_timesteps {NumTrainTimesteps} must be at least 2 and match trained_betas");
        }

        return this;
    }
}
