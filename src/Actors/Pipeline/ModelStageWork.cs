using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Models;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// A stage of a staged model on its device. The first stage takes rows (an ids tensor, or a dictionary with
/// <c>input_ids</c> and <c>attention_mask</c>); the others take the previous stage's <see cref="StagedBatch"/>. Its
/// stage actor frees the payload it was given (<see cref="IStageWork.Run"/>); this work frees only the copies it made
/// and does not return. Tensors on another device are moved to this stage's device first (the moved ids and mask
/// travel on with the output).
/// The last stage returns its output on the CPU, one row per input row.
/// A <see cref="GenerationStep"/> payload (pipelined generation) runs through a <see cref="StageDecoder"/> that keeps
/// this stage's key/value cache per sequence; the stage passes the step on as a payload, the last stage with the logits.
/// </summary>
public sealed class ModelStageWork : IStageWork
{
    private readonly ModelStage _stage;
    private readonly bool _last;
    private StageDecoder? _decoder;

    public ModelStageWork(ModelStage stage, bool last)
        : this(stage, last, residentBefore: null)
    {
    }

    private ModelStageWork(ModelStage stage, bool last, long? residentBefore)
    {
        _stage = stage;
        _last = last;
        var weights = stage.parameters().Sum(p => p.NumberOfElements * p.ElementSize);
        var memory = string.Empty;
        if (Models.Runtime.ProcessMemory.IsAvailable)
        {
            var peak = Models.Runtime.ProcessMemory.PeakResidentBytes();
            memory = residentBefore is { } before
                ? $", process resident {before / 1e6:F0} MB before and peak {peak / 1e6:F0} MB after loading (+{(peak - before) / 1e6:F1} MB, {(peak - before) / (double)Math.Max(weights, 1):F2}x its weights)"
                : $", process resident peak {peak / 1e6:F0} MB";
        }

        Description = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{string.Join(", ", stage.LayerNames)} on {stage.Device}: {weights / 1e6:F1} MB of weights loaded{memory}");
    }

    /// <summary>
    /// Builds a stage with <paramref name="create"/> and measures what loading it cost the process (resident memory
    /// before, and the resident peak while loading, from /proc/self/status on Linux); the description reports both.
    /// </summary>
    public static ModelStageWork Load(Func<ModelStage> create, bool last)
    {
        long? before = null;
        if (Models.Runtime.ProcessMemory.IsAvailable && Models.Runtime.ProcessMemory.ResetPeak())
        {
            before = Models.Runtime.ProcessMemory.ResidentBytes();
        }

        return new ModelStageWork(create(), last, before);
    }

    public string Description { get; }

    public object Run(object payload)
    {
        if (GenerationStep.TryRead(payload, out var step))
        {
            return RunStep(step);
        }

        var input = payload switch
        {
            StagedBatch batch => batch,
            Tensor ids => StagedBatch.FromTokens(ids),
            IReadOnlyDictionary<string, object> named when named.TryGetValue("input_ids", out var ids) && ids is Tensor idsTensor =>
                StagedBatch.FromTokens(idsTensor, named.TryGetValue("attention_mask", out var mask) ? mask as Tensor : null),
            _ => throw new InvalidInputException($"a pipeline takes an input_ids tensor or a dictionary with input_ids, got {payload.GetType().Name}"),
        };
        var local = OnDevice(input);
        var output = _stage.Run(local);
        object result = _last ? output.Hidden.cpu() : output;

        // The copies made here (moved to this device, the activation a last stage copied to the CPU) that are not
        // returned; the input's own tensors are the stage actor's to free.
        RowOwnership.DisposeExcept(new object[] { local, output }, new object[] { input, result });
        return result;
    }

    public void Dispose()
    {
        _decoder?.Dispose();
        _stage.Dispose();
    }

    private object RunStep(GenerationStep step)
    {
        _decoder ??= new StageDecoder(_stage);
        // The step's tensors are the stage actor's to free: what the output does not carry on goes there.
        return _decoder.Run(step, _last).ToPayload();
    }

    private StagedBatch OnDevice(StagedBatch batch)
    {
        var device = _stage.Device;
        if (Here(batch.Hidden) && Here(batch.InputIds) && (batch.AttentionMask is null || Here(batch.AttentionMask)))
        {
            return batch;
        }

        var ids = batch.InputIds.to(device);
        var hidden = ReferenceEquals(batch.Hidden, batch.InputIds) ? ids : batch.Hidden.to(device);
        return new StagedBatch(hidden, ids, batch.AttentionMask?.to(device));
    }

    private bool Here(Tensor tensor) => tensor.device_type == _stage.Device.type && (tensor.device_index == _stage.Device.index || !tensor.is_cuda);
}
