using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// A stage double for pipelined-generation simulations: each <see cref="GenerationStep"/> holds the stage's thread for
/// <c>fixed + perRow x rows</c> (a release costs nothing) and passes the step on; the last stage returns float32 logits
/// [B, <see cref="Vocabulary"/>] whose most likely token is always 1, so greedy decoding runs to max_new_tokens.
/// </summary>
public sealed class SimulatedDecoderWork : IStageWork
{
    /// <summary>The simulated vocabulary.</summary>
    public const int Vocabulary = 4;

    private readonly TimeSpan _fixed;
    private readonly TimeSpan _perRow;
    private readonly bool _last;

    /// <param name="fixedTime">Time of a step whatever its rows (a memory-bound decode step).</param>
    /// <param name="perRow">Time added per row of the step (compute-bound).</param>
    /// <param name="last">Whether this is the last stage (returns logits).</param>
    public SimulatedDecoderWork(TimeSpan fixedTime, TimeSpan perRow, bool last)
    {
        _fixed = fixedTime;
        _perRow = perRow;
        _last = last;
        Description = $"simulated decoder stage, {fixedTime.TotalMilliseconds} ms + {perRow.TotalMilliseconds} ms a row per step";
    }

    public string Description { get; }

    /// <exception cref="Models.InvalidInputException">A payload that is not a generation step.</exception>
    public object Run(object payload)
    {
        if (!GenerationStep.TryRead(payload, out var step))
        {
            throw new Models.InvalidInputException("a simulated decoder stage takes generation steps");
        }

        if (step.Release)
        {
            return payload;
        }

        var rows = step.Hidden.shape[0];
        Thread.Sleep(_fixed + (_perRow * rows));
        if (!_last)
        {
            return payload;
        }

        var logits = zeros([rows, Vocabulary], ScalarType.Float32);
        logits.select(1, 1).fill_(1);
        return (step with { Hidden = logits }).ToPayload();
    }

    public void Dispose()
    {
    }
}
