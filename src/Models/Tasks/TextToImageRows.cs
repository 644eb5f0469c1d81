using DistributedInference.Models.Diffusion;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tasks;

/// <summary>
/// The rows a text-to-image job splits, as a dictionary the replica reads: <c>input_ids</c> and
/// <c>negative_input_ids</c> [B, 77] int64 (the tokenizer's padded rows), <c>row_index</c> [B] int64 (each row's index in
/// its job, which seeds its latents), optionally <c>latents</c> [B, C, h, w] float32, and each row's options:
/// <c>num_inference_steps</c>, <c>height</c>, <c>width</c>, <c>seed</c> [B] int64, <c>guidance_scale</c> [B] float64 and
/// <c>scheduler</c> (a list of names, "" for the folder's). Every value splits along rows, so the splitter's rules (and
/// padding with copies of the last row) apply unchanged and a device needs no job settings of its own.
/// </summary>
public static class TextToImageRows
{
    public const string InputIds = "input_ids";
    public const string NegativeInputIds = "negative_input_ids";
    public const string RowIndex = "row_index";
    public const string Latents = "latents";
    public const string NumInferenceSteps = "num_inference_steps";
    public const string GuidanceScale = "guidance_scale";
    public const string Height = "height";
    public const string Width = "width";
    public const string Seed = "seed";
    public const string Scheduler = "scheduler";

    /// <summary>The rows of a job whose every row has <paramref name="options"/>; tensors are referenced, the option columns new.</summary>
    /// <param name="inputIds">[B, 77] int64.</param>
    /// <param name="negativeInputIds">[B, 77] int64.</param>
    /// <param name="rowIndex">[B] int64; null: 0..B-1.</param>
    /// <param name="latents">[B, C, h, w] float32, or null (drawn per row from the seed).</param>
    public static IReadOnlyDictionary<string, object> Of(Tensor inputIds, Tensor negativeInputIds, TextToImageOptions options, Tensor? rowIndex = null, Tensor? latents = null)
    {
        var count = inputIds.shape[0];
        var rows = new Dictionary<string, object>
        {
            [InputIds] = inputIds,
            [NegativeInputIds] = negativeInputIds,
            [RowIndex] = rowIndex ?? arange(count, ScalarType.Int64),
            [NumInferenceSteps] = full(count, options.NumInferenceSteps, ScalarType.Int64),
            [GuidanceScale] = full(count, options.GuidanceScale, ScalarType.Float64),
            [Height] = full(count, options.Height ?? 0, ScalarType.Int64),
            [Width] = full(count, options.Width ?? 0, ScalarType.Int64),
            [Seed] = full(count, options.Seed, ScalarType.Int64),
            [Scheduler] = Enumerable.Repeat((object)(options.Scheduler ?? string.Empty), (int)count).ToArray(),
        };
        if (latents is not null)
        {
            rows[Latents] = latents;
        }

        return rows;
    }

    /// <summary>The rows of a job whose rows each have their own options (seed, size, steps ...); the option columns are new.</summary>
    /// <param name="inputIds">[B, 77] int64.</param>
    /// <param name="negativeInputIds">[B, 77] int64.</param>
    /// <param name="options">One per row.</param>
    /// <param name="rowIndex">[B] int64: with each row's seed, what its initial latents are drawn from.</param>
    public static IReadOnlyDictionary<string, object> Of(Tensor inputIds, Tensor negativeInputIds, IReadOnlyList<TextToImageOptions> options, Tensor rowIndex) => new Dictionary<string, object>
    {
        [InputIds] = inputIds,
        [NegativeInputIds] = negativeInputIds,
        [RowIndex] = rowIndex,
        [NumInferenceSteps] = tensor(options.Select(o => (long)o.NumInferenceSteps).ToArray()),
        [GuidanceScale] = tensor(options.Select(o => o.GuidanceScale).ToArray()),
        [Height] = tensor(options.Select(o => (long)(o.Height ?? 0)).ToArray()),
        [Width] = tensor(options.Select(o => (long)(o.Width ?? 0)).ToArray()),
        [Seed] = tensor(options.Select(o => o.Seed).ToArray()),
        [Scheduler] = options.Select(o => (object)(o.Scheduler ?? string.Empty)).ToArray(),
    };

    /// <summary>Reads rows made by <see cref="Of"/>: the tensors as given, each row's options (height/width 0 = default).</summary>
    /// <exception cref="InvalidInputException">A member missing or of the wrong kind.</exception>
    public static (Tensor InputIds, Tensor NegativeInputIds, Tensor RowIndex, Tensor? Latents, IReadOnlyList<TextToImageOptions> Options) Read(object rows)
    {
        if (rows is not IReadOnlyDictionary<string, object> named)
        {
            throw new InvalidInputException($"text-to-image takes a dictionary with {InputIds}, {NegativeInputIds}, {RowIndex} and the options (TextToImageRows.Of), or a list of prompts");
        }

        Tensor Get(string key) => named.TryGetValue(key, out var value) && value is Tensor t
            ? t
            : throw new InvalidInputException($"text-to-image rows need a tensor {key}");
        var ids = Get(InputIds);
        var count = (int)ids.shape[0];
        var steps = Get(NumInferenceSteps).data<long>().ToArray();
        var guidance = Get(GuidanceScale).to(ScalarType.Float64).data<double>().ToArray();
        var heights = Get(Height).data<long>().ToArray();
        var widths = Get(Width).data<long>().ToArray();
        var seeds = Get(Seed).data<long>().ToArray();
        var schedulers = named.TryGetValue(Scheduler, out var s) && s is System.Collections.IList list && list.Count == count
            ? list.Cast<object?>().Select(x => x as string ?? string.Empty).ToArray()
            : throw new InvalidInputException($"text-to-image rows need a list {Scheduler} of {count} names");
        var options = Enumerable.Range(0, count).Select(i => new TextToImageOptions(
            checked((int)steps[i]), guidance[i], schedulers[i].Length == 0 ? null : schedulers[i],
            heights[i] == 0 ? null : checked((int)heights[i]), widths[i] == 0 ? null : checked((int)widths[i]), seeds[i])).ToList();
        return (ids, Get(NegativeInputIds), Get(RowIndex), named.TryGetValue(Latents, out var l) ? l as Tensor : null, options);
    }
}
