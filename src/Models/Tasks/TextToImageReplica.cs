using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// A Stable Diffusion pipeline as a replica (task text-to-image). Input rows are <see cref="TextToImageRows"/> (each row
/// carries its options), or prompts (a list of strings, run with the factory's default options and the empty negative
/// prompt); results are uint8 images [B, H, W, 3] on the CPU, owned by the caller. Consecutive rows with the same options
/// run as one batch; rows of one call must share height and width.
/// </summary>
public sealed class TextToImageReplica : IReplicaModel
{
    private readonly StableDiffusionPipeline _pipeline;
    private readonly TextToImageOptions _defaults;
    private readonly Action<int>? _onStep;

    private TextToImageReplica(StableDiffusionPipeline pipeline, TextToImageOptions defaults, Action<int>? onStep, ReplicaSpec spec, DeviceName device)
    {
        _pipeline = pipeline;
        _defaults = defaults;
        _onStep = onStep;
        Spec = spec;
        Description = spec.On(device);
    }

    public string Description { get; }

    public ReplicaSpec Spec { get; }

    /// <summary>Builds the pipeline from <paramref name="source"/> on each device it is called for.</summary>
    /// <param name="defaults">Options of rows given as prompts.</param>
    /// <param name="onStep">Called after each denoising step with the number of rows the step advanced (progress).</param>
    public static ReplicaModelFactory Factory(StableDiffusionSource source, ScalarType dtype, TextToImageOptions? defaults = null, Action<int>? onStep = null) =>
        device => new TextToImageReplica(
            source.CreatePipeline(device.ToTorch(), dtype), (defaults ?? TextToImageOptions.Default).Validate(), onStep,
            new ReplicaSpec(ModelIdentity.Of(source.Name, source.IsBuiltIn ? source.Seed : null), InferenceTask.TextToImage, Precisions.Of(dtype)),
            device);

    public object Run(object rows)
    {
        if (rows is System.Collections.IList list && list.Cast<object?>().All(p => p is string))
        {
            var prompts = list.Cast<string>().ToList();
            using var ids = _pipeline.Source.Tokenizer.Tokenize(prompts);
            using var negative = _pipeline.Source.Tokenizer.Tokenize(prompts.Select(_ => string.Empty).ToList());
            return Generate(ids, negative, null, prompts.Select((_, i) => (long)i).ToArray(), prompts.Select(_ => _defaults).ToList());
        }

        var (inputIds, negativeIds, rowIndex, latents, options) = TextToImageRows.Read(rows);
        return Generate(inputIds, negativeIds, latents, rowIndex.data<long>().ToArray(), options);
    }

    public void Dispose() => _pipeline.Dispose();

    private Tensor Generate(Tensor inputIds, Tensor negativeIds, Tensor? latents, long[] rowIndex, IReadOnlyList<TextToImageOptions> options)
    {
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        for (var start = 0; start < options.Count;)
        {
            var end = start + 1;
            while (end < options.Count && options[end] == options[start])
            {
                end++;
            }

            var count = end - start;
            parts.Add(_pipeline.Generate(
                inputIds.narrow(0, start, count), negativeIds.narrow(0, start, count), options[start], rowIndex[start..end],
                latents?.narrow(0, start, count), _onStep is null ? null : _ => _onStep(count)));
            start = end;
        }

        if (parts.Select(p => (p.shape[1], p.shape[2])).Distinct().Count() > 1)
        {
            throw new InvalidInputException("text-to-image rows of one batch must share height and width");
        }

        return (parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 0)).MoveToOuterDisposeScope();
    }
}
