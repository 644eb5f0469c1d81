using System.Globalization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// A row's next-token logits hold NaN or Inf (fp16 overflow, a corrupt checkpoint): nothing can be decoded from them.
/// Sampling from them fails, as transformers' does (<c>torch.multinomial</c>: "probability tensor contains either inf,
/// nan or element &lt; 0"); greedy fails too, where transformers' argmax would silently pick token 0. In replica mode
/// the row then fails alone (the job's other rows are answered).
/// </summary>
public sealed class NonFiniteLogitsException : ArithmeticException
{
    public NonFiniteLogitsException(string message)
        : base(message)
    {
    }

    /// <summary>Throws when an active row's logits are not all finite.</summary>
    /// <param name="logits">[B, vocab] float logits of one step.</param>
    /// <param name="active">[B] bool, the rows still generating (null: every row), on the logits' device.</param>
    /// <param name="step">The step's index (0 = the token after the prompt).</param>
    /// <param name="dtype">The model's dtype, named in the message when known.</param>
    /// <exception cref="NonFiniteLogitsException">Some active row's logits hold NaN or Inf.</exception>
    public static void ThrowIfAny(Tensor logits, Tensor? active, int step, ScalarType? dtype)
    {
        using var scope = NewDisposeScope();
        // A row's largest and smallest logit are both finite only when all are: max and min propagate NaN. Two reductions
        // to [rows], where isfinite().all() wrote a bool per logit first (~6 ms a step for 8 rows of 152k at one thread).
        var bad = logits.amax(-1).isfinite().logical_and(logits.amin(-1).isfinite()).logical_not();
        if (active is not null)
        {
            bad = bad.logical_and(active);
        }

        if (!bad.any().ToBoolean())
        {
            return;
        }

        var rows = bad.sum().ToInt64();
        throw new NonFiniteLogitsException(string.Create(CultureInfo.InvariantCulture,
            $"the next-token logits of {rows} of {logits.shape[0]} row(s) in the batch hold NaN or Inf at step {step}{(dtype is { } d ? $" in {Runtime.Precisions.Name(d)}" : string.Empty)}: nothing to decode from (fp16 overflows where bf16 and fp32 do not; a corrupt checkpoint does too)"));
    }
}
