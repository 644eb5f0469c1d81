using System.Globalization;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// Outputs that hold NaN or Inf (a corrupt checkpoint, fp16 overflow) are not silently written as if they were fine:
/// one warning line on stderr, or with <c>--strict</c> a failed job and no output.
/// </summary>
public static class NonFiniteOutputs
{
    /// <param name="result">A job's results, rows along dim 0; integer results (generated ids) are always finite. Not disposed.</param>
    /// <param name="warnings">Where the warning line goes (stderr).</param>
    /// <param name="strict">Fail instead of warning.</param>
    /// <exception cref="JobFailedException">With <paramref name="strict"/>, when any value is NaN or Inf.</exception>
    public static void Check(Tensor result, TextWriter warnings, bool strict)
    {
        if (!result.is_floating_point() || result.NumberOfElements == 0)
        {
            return;
        }

        using var scope = NewDisposeScope();
        var bad = result.isfinite().logical_not();
        var count = bad.sum().ToInt64();
        if (count == 0)
        {
            return;
        }

        var rows = bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten().data<long>().ToArray();
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{count} NaN/Inf value(s) in the output, in {rows.Length} of {result.shape[0]} row(s) (first: row {rows[0]}); the checkpoint or the dtype may be at fault");
        if (strict)
        {
            throw new JobFailedException($"{text}; nothing written (--strict)");
        }

        warnings.WriteLine($"di: warning: {text}");
    }
}
