using DistributedInference.Models.Tasks;

namespace DistributedInference.Models.Auto;

/// <summary>The one check, with one wording, that a model runs a task (in a mode).</summary>
public static class ModelTasks
{
    /// <exception cref="InvalidInputException">The model does not run <paramref name="task"/>.</exception>
    public static void Require(IModelSource source, InferenceTask task)
    {
        if (!source.Tasks.Contains(task))
        {
            var hint = task == InferenceTask.Classify ? " (no classification head: task classify needs a ...ForSequenceClassification folder)" : string.Empty;
            throw new InvalidInputException(
                $"{source.Name} ({source.ModelType}) does not run task {task.Name()}{hint}: it runs {string.Join(", ", source.Tasks.Select(t => t.Name()))}");
        }
    }

    /// <summary>Whether pipeline mode runs <paramref name="task"/> for this model (see <see cref="RequirePipelined"/>).</summary>
    public static bool RunsPipelined(IModelSource source, InferenceTask task) =>
        source.Tasks.Contains(task) && task != InferenceTask.TextToImage
        && (task != InferenceTask.Generate || Llama.LlamaConfig.SupportedModelTypes.Contains(source.ModelType));

    /// <summary>
    /// Also checks that pipeline mode runs <paramref name="task"/>: every task; generate for the Llama-family decoders
    /// (whose stages keep a key/value cache), not yet for GPT-2.
    /// </summary>
    public static void RequirePipelined(IModelSource source, InferenceTask task)
    {
        Require(source, task);
        if (task == InferenceTask.TextToImage)
        {
            throw new InvalidInputException("pipeline mode does not run text-to-image yet: use --mode replica (each device holds the whole Stable Diffusion pipeline)");
        }

        if (!RunsPipelined(source, task))
        {
            throw new InvalidInputException(
                $"pipeline mode runs {string.Join(", ", source.Tasks.Where(t => t != InferenceTask.Generate).Select(t => t.Name()))} for {source.ModelType}; task generate runs in replica mode (pipelined generation: {string.Join(", ", Llama.LlamaConfig.SupportedModelTypes)})");
        }
    }
}
