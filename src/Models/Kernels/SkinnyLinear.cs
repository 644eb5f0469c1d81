using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Kernels;

/// <summary>
/// <c>torch.nn.functional.linear</c> (y = x·Wᵀ + b, W as <c>nn.Linear</c> stores it, [out, in]) for a skinny input:
/// at most <see cref="MaxRows"/> rows, as in a decode step (one row per sequence), fp32 on an x86 CPU with AVX2 and
/// FMA. Other inputs go to libtorch's <c>linear</c> unchanged.
/// </summary>
/// <remarks>
/// A decode step is a matrix-vector product per weight: it should run at the speed weights stream from memory. The
/// oneMKL sgemm in libtorch's CPU build does not for few rows: on this project's Zen 4 CPU 8 rows took 3-4x the time of
/// one row over the same weights (docs/benchmarks.md). This kernel reads 4 weight rows and 2 input rows per step of
/// 8 floats (8 accumulators, one per pair; an odd last row takes 4) and sums each pair's 8 lanes at the end, while
/// the 4 weight rows stay in the L1 cache for the next 2 input rows. Each output element is one dot product in one fixed order (lanes over
/// ascending k, then the lanes, then the tail of k, then the bias), whatever the other rows and the thread count: a
/// row's result is bit-identical alone and in any batch, which libtorch's kernels do not promise. Threads: the output
/// features are split across <c>torch.get_num_threads()</c> workers when the weight is large enough to pay for them.
/// </remarks>
public static class SkinnyLinear
{
    /// <summary>
    /// The most rows (the product of every dimension of the input but the last) this kernel takes: the default
    /// <c>max_num_seqs</c> of continuous batching, so every decode step of a default engine runs here (and a sequence's
    /// rows get the same bits whatever its step's batch). At 32 and 64 rows it still beat libtorch's sgemm on qwen2.5-0.5b's
    /// shapes here; longer inputs (prompts) go to libtorch.
    /// </summary>
    public const int MaxRows = 64;

    // Weights smaller than this (elements) run on one thread: splitting them costs more than it saves.
    private const long ParallelWeights = 1 << 18;

    [ThreadStatic]
    private static bool t_bypassed;

    /// <summary>
    /// Until disposed, <see cref="Linear(Tensor, Tensor, Tensor?, int?)"/> on this thread sends everything to libtorch's
    /// <c>linear</c> (<c>di bench model</c> times a decode step both ways, side by side). Other threads are unaffected.
    /// </summary>
    public static IDisposable Bypass()
    {
        var before = t_bypassed;
        t_bypassed = true;
        return new Restore(before);
    }

    /// <summary>Whether <see cref="Linear(Tensor, Tensor, Tensor?, int?)"/> computes <paramref name="input"/> itself.</summary>
    public static bool Applies(Tensor input, Tensor weight, Tensor? bias)
    {
        if (t_bypassed || !Fma.IsSupported || !Avx2.IsSupported)
        {
            return false;
        }

        if (input.dtype != ScalarType.Float32 || weight.dtype != ScalarType.Float32 || (bias is not null && bias.dtype != ScalarType.Float32))
        {
            return false;
        }

        if (input.device_type != DeviceType.CPU || weight.device_type != DeviceType.CPU || (bias is not null && bias.device_type != DeviceType.CPU))
        {
            return false;
        }

        if (weight.dim() != 2 || input.dim() < 1 || input.shape[^1] != weight.shape[1] || (bias is not null && (bias.dim() != 1 || bias.shape[0] != weight.shape[0])))
        {
            return false;
        }

        var features = weight.shape[1];
        var rows = features == 0 ? 0 : input.numel() / features;
        if (rows is < 1 or > MaxRows || weight.numel() * sizeof(float) > int.MaxValue)
        {
            return false;
        }

        if (!input.is_contiguous() || !weight.is_contiguous() || (bias is not null && !bias.is_contiguous()))
        {
            return false;
        }

        return !is_grad_enabled() || !(input.requires_grad || weight.requires_grad || (bias?.requires_grad ?? false));
    }

    /// <summary>y = x·Wᵀ + b, as <c>torch.nn.functional.linear</c>.</summary>
    /// <param name="input">x: [..., in], float32 for this kernel (any dtype libtorch takes otherwise).</param>
    /// <param name="weight">W: [out, in].</param>
    /// <param name="bias">b: [out], or null.</param>
    /// <param name="threads">Workers to split the output features among; null: <c>torch.get_num_threads()</c> (one for small weights).</param>
    /// <returns>[..., out], a new tensor the caller owns.</returns>
    public static Tensor Linear(Tensor input, Tensor weight, Tensor? bias = null, int? threads = null)
    {
        if (!Applies(input, weight, bias))
        {
            return nn.functional.linear(input, weight, bias);
        }

        var outputs = weight.shape[0];
        var features = (int)weight.shape[1];
        var rows = (int)(input.numel() / features);
        var shape = input.shape.ToArray();
        shape[^1] = outputs;
        var result = empty(shape, ScalarType.Float32);
        var workers = Math.Max(1, threads ?? (outputs * features >= ParallelWeights ? get_num_threads() : 1));
        var blocks = (int)((outputs + 3) / 4);
        if (workers == 1)
        {
            Run(input, weight, bias, result, rows, features, 0, (int)outputs);
        }
        else
        {
            var per = (blocks + workers - 1) / workers;
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, t =>
            {
                var from = t * per * 4;
                var to = (int)Math.Min(outputs, (long)(t + 1) * per * 4);
                if (from < to)
                {
                    Run(input, weight, bias, result, rows, features, from, to);
                }
            });
        }

        return result;
    }

    /// <summary><paramref name="linear"/>'s forward (its own weight and bias) through <see cref="Linear(Tensor, Tensor, Tensor?, int?)"/>.</summary>
    public static Tensor Apply(this Linear linear, Tensor input) => Linear(input, linear.weight!, linear.bias);

    // Output features [from, to) of every row.
    private static void Run(Tensor input, Tensor weight, Tensor? bias, Tensor result, int rows, int features, int from, int to)
    {
        var x = MemoryMarshal.Cast<byte, float>(input.bytes);
        var w = MemoryMarshal.Cast<byte, float>(weight.bytes);
        var y = MemoryMarshal.Cast<byte, float>(result.bytes);
        var b = bias is null ? default : MemoryMarshal.Cast<byte, float>(bias.bytes);
        var outputs = (int)weight.shape[0];
        ref var x0 = ref MemoryMarshal.GetReference(x);
        ref var w0 = ref MemoryMarshal.GetReference(w);
        var n = from;
        for (; n + 4 <= to; n += 4)
        {
            var m = 0;
            for (; m + 2 <= rows; m += 2)
            {
                FourByTwo(ref w0, (nuint)n * (nuint)features, ref x0, (nuint)m * (nuint)features, features, y, m * outputs + n, outputs);
            }

            if (m < rows)
            {
                FourByOne(ref w0, (nuint)n * (nuint)features, ref x0, (nuint)m * (nuint)features, features, y, m * outputs + n);
            }
        }

        for (; n < to; n++)
        {
            for (var m = 0; m < rows; m++)
            {
                y[(m * outputs) + n] = Dot(ref w0, (nuint)n * (nuint)features, ref x0, (nuint)m * (nuint)features, features);
            }
        }

        if (bias is not null)
        {
            for (var m = 0; m < rows; m++)
            {
                for (var i = from; i < to; i++)
                {
                    y[(m * outputs) + i] += b[i];
                }
            }
        }
    }

    // Weight rows n..n+3 (from element w) against input rows m, m+1 (from element x); results at y[at + i] and
    // y[at + stride + i]. Each sum in the same order as Dot.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourByTwo(ref float w, nuint wAt, ref float x, nuint xAt, int features, Span<float> y, int at, int stride)
    {
        var k = (nuint)features;
        nuint w1 = wAt + k, w2 = w1 + k, w3 = w2 + k, xb = xAt + k;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        nuint i = 0;
        var whole = (nuint)(features & ~7);
        for (; i < whole; i += 8)
        {
            var v0 = Vector256.LoadUnsafe(ref w, wAt + i);
            var v1 = Vector256.LoadUnsafe(ref w, w1 + i);
            var v2 = Vector256.LoadUnsafe(ref w, w2 + i);
            var v3 = Vector256.LoadUnsafe(ref w, w3 + i);
            var p = Vector256.LoadUnsafe(ref x, xAt + i);
            a0 = Fma.MultiplyAdd(v0, p, a0);
            a1 = Fma.MultiplyAdd(v1, p, a1);
            a2 = Fma.MultiplyAdd(v2, p, a2);
            a3 = Fma.MultiplyAdd(v3, p, a3);
            p = Vector256.LoadUnsafe(ref x, xb + i);
            b0 = Fma.MultiplyAdd(v0, p, b0);
            b1 = Fma.MultiplyAdd(v1, p, b1);
            b2 = Fma.MultiplyAdd(v2, p, b2);
            b3 = Fma.MultiplyAdd(v3, p, b3);
        }

        y[at] = Vector256.Sum(a0) + Tail(ref w, wAt, ref x, xAt, whole, k);
        y[at + 1] = Vector256.Sum(a1) + Tail(ref w, w1, ref x, xAt, whole, k);
        y[at + 2] = Vector256.Sum(a2) + Tail(ref w, w2, ref x, xAt, whole, k);
        y[at + 3] = Vector256.Sum(a3) + Tail(ref w, w3, ref x, xAt, whole, k);
        y[at + stride] = Vector256.Sum(b0) + Tail(ref w, wAt, ref x, xb, whole, k);
        y[at + stride + 1] = Vector256.Sum(b1) + Tail(ref w, w1, ref x, xb, whole, k);
        y[at + stride + 2] = Vector256.Sum(b2) + Tail(ref w, w2, ref x, xb, whole, k);
        y[at + stride + 3] = Vector256.Sum(b3) + Tail(ref w, w3, ref x, xb, whole, k);
    }

    // Weight rows n..n+3 against input row m: FourByTwo's first half.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourByOne(ref float w, nuint wAt, ref float x, nuint xAt, int features, Span<float> y, int at)
    {
        var k = (nuint)features;
        nuint w1 = wAt + k, w2 = w1 + k, w3 = w2 + k;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        nuint i = 0;
        var whole = (nuint)(features & ~7);
        for (; i < whole; i += 8)
        {
            var p = Vector256.LoadUnsafe(ref x, xAt + i);
            a0 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref w, wAt + i), p, a0);
            a1 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref w, w1 + i), p, a1);
            a2 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref w, w2 + i), p, a2);
            a3 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref w, w3 + i), p, a3);
        }

        y[at] = Vector256.Sum(a0) + Tail(ref w, wAt, ref x, xAt, whole, k);
        y[at + 1] = Vector256.Sum(a1) + Tail(ref w, w1, ref x, xAt, whole, k);
        y[at + 2] = Vector256.Sum(a2) + Tail(ref w, w2, ref x, xAt, whole, k);
        y[at + 3] = Vector256.Sum(a3) + Tail(ref w, w3, ref x, xAt, whole, k);
    }

    private static float Dot(ref float w, nuint wAt, ref float x, nuint xAt, int features)
    {
        var acc = Vector256<float>.Zero;
        nuint i = 0;
        var whole = (nuint)(features & ~7);
        for (; i < whole; i += 8)
        {
            acc = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref w, wAt + i), Vector256.LoadUnsafe(ref x, xAt + i), acc);
        }

        return Vector256.Sum(acc) + Tail(ref w, wAt, ref x, xAt, whole, (nuint)features);
    }

    private static float Tail(ref float w, nuint wAt, ref float x, nuint xAt, nuint from, nuint to)
    {
        var sum = 0f;
        for (var i = from; i < to; i++)
        {
            sum = MathF.FusedMultiplyAdd(Unsafe.Add(ref w, wAt + i), Unsafe.Add(ref x, xAt + i), sum);
        }

        return sum;
    }

    private sealed class Restore(bool before) : IDisposable
    {
        public void Dispose() => t_bypassed = before;
    }
}
