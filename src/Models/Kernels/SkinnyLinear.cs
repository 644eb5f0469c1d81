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
/// FMA. Other inputs go to libtorch's <c>linear</c> unchanged: other dtypes and devices, strided tensors, autograd, more
/// rows, and tensors of 2 GiB or more.
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
    /// <c>max_num_seqs</c> of continuous batching, so every decode step of a default engine runs here, and a sequence's
    /// decode-step projections get the same bits whatever its step's batch. Prompts (a pass of rows x tokens over 64,
    /// and the head of a prompt pass, which reads a strided last position) go to libtorch, whose bits may depend on the
    /// batch. At 32 and 64 rows the kernel still beat libtorch's sgemm on qwen2.5-0.5b's shapes here.
    /// </summary>
    public const int MaxRows = 64;

    // Weights smaller than this (elements) run on one thread: splitting them costs more than it saves.
    private const long ParallelWeights = 1 << 18;

    [ThreadStatic]
    private static bool t_bypassed;

    [ThreadStatic]
    private static bool t_narrow;

    /// <summary>
    /// The vector width, in floats, of the kernel that <see cref="Linear(Tensor, Tensor, Tensor?, int?)"/> runs on this
    /// thread: 16 (AVX-512), 8 (AVX2 and FMA), or 0 where the CPU has neither and everything goes to libtorch. A row's
    /// bits depend on it: two machines of different widths agree to rounding, not to the bit.
    /// </summary>
    public static int Lanes => !Fma.IsSupported || !Avx2.IsSupported ? 0 : SkinnyLinearAvx512.IsSupported && !t_narrow ? 16 : 8;

    /// <summary>
    /// Until disposed, this thread runs the 8-lane AVX2 kernel even where AVX-512 is there (<c>di bench model</c> and the
    /// tests compare both). Other threads are unaffected.
    /// </summary>
    public static IDisposable Narrow()
    {
        var before = t_narrow;
        t_narrow = true;
        return new Restore(() => t_narrow = before);
    }

    /// <summary>
    /// Until disposed, <see cref="Linear(Tensor, Tensor, Tensor?, int?)"/> on this thread sends everything to libtorch's
    /// <c>linear</c> (<c>di bench model</c> times a decode step both ways, side by side). Other threads are unaffected.
    /// </summary>
    public static IDisposable Bypass()
    {
        var before = t_bypassed;
        t_bypassed = true;
        return new Restore(() => t_bypassed = before);
    }

    /// <summary>Whether <see cref="Linear(Tensor, Tensor, Tensor?, int?)"/> computes <paramref name="input"/> itself.</summary>
    public static bool Applies(Tensor input, Tensor weight, Tensor? bias) => Plan(input, weight, bias) is not null;

    /// <summary>y = x·Wᵀ + b, as <c>torch.nn.functional.linear</c>.</summary>
    /// <param name="input">x: [..., in], float32 for this kernel (any dtype libtorch takes otherwise).</param>
    /// <param name="weight">W: [out, in].</param>
    /// <param name="bias">b: [out], or null.</param>
    /// <param name="threads">Workers to split the output features among; null: <c>torch.get_num_threads()</c> (one for small weights).</param>
    /// <returns>[..., out], a new tensor the caller owns.</returns>
    public static Tensor Linear(Tensor input, Tensor weight, Tensor? bias = null, int? threads = null)
    {
        if (Plan(input, weight, bias) is not { } plan)
        {
            return nn.functional.linear(input, weight, bias);
        }

        var (shape, rows, features, outputs) = plan;
        var wide = Lanes == 16;
        shape[^1] = outputs;
        var result = empty(shape, ScalarType.Float32);
        var workers = Math.Max(1, threads ?? (outputs * features >= ParallelWeights ? get_num_threads() : 1));
        if (workers == 1)
        {
            Run(input, weight, bias, result, rows, features, outputs, 0, outputs, wide);
        }
        else
        {
            var blocks = (outputs + 3) / 4;
            var per = (blocks + workers - 1) / workers;
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, t =>
            {
                var from = t * per * 4;
                var to = Math.Min(outputs, (t + 1) * per * 4);
                if (from < to)
                {
                    Run(input, weight, bias, result, rows, features, outputs, from, to, wide);
                }
            });
        }

        return result;
    }

    // The input's shape, its rows, in and out features when the kernel takes these tensors; null otherwise. Reads each
    // shape once: TorchSharp's `shape` costs ~1.5 µs a read, and a decode step calls this ~170 times.
    private static (long[] Shape, int Rows, int Features, int Outputs)? Plan(Tensor input, Tensor weight, Tensor? bias)
    {
        if (t_bypassed || !Fma.IsSupported || !Avx2.IsSupported)
        {
            return null;
        }

        if (input.dtype != ScalarType.Float32 || weight.dtype != ScalarType.Float32 || (bias is not null && bias.dtype != ScalarType.Float32))
        {
            return null;
        }

        if (input.device_type != DeviceType.CPU || weight.device_type != DeviceType.CPU || (bias is not null && bias.device_type != DeviceType.CPU))
        {
            return null;
        }

        var weightShape = weight.shape;
        var shape = input.shape;
        if (weightShape.Length != 2 || shape.Length < 1 || shape[^1] != weightShape[1] || weightShape[1] == 0)
        {
            return null;
        }

        var (outputs, features) = (weightShape[0], weightShape[1]);
        if (bias is not null && (bias.dim() != 1 || bias.size(0) != outputs))
        {
            return null;
        }

        var rows = 1L;
        for (var i = 0; i < shape.Length - 1; i++)
        {
            rows *= shape[i];
        }

        // TorchSharp's byte spans end at 2 GiB: every tensor the kernel reads or writes stays below that.
        const long Largest = int.MaxValue / sizeof(float);
        if (rows is < 1 or > MaxRows || outputs * features > Largest || rows * features > Largest || rows * outputs > Largest)
        {
            return null;
        }

        if (!input.is_contiguous() || !weight.is_contiguous() || (bias is not null && !bias.is_contiguous()))
        {
            return null;
        }

        var learning = is_grad_enabled() && (input.requires_grad || weight.requires_grad || (bias?.requires_grad ?? false));
        return learning ? null : (shape, (int)rows, (int)features, (int)outputs);
    }

    /// <summary><paramref name="linear"/>'s forward (its own weight and bias) through <see cref="Linear(Tensor, Tensor, Tensor?, int?)"/>.</summary>
    public static Tensor Apply(this Linear linear, Tensor input) => Linear(input, linear.weight!, linear.bias);

    // Output features [from, to) of every row. libtorch's memory is native (never moved by the GC): pointers to it are
    // stable while the tensors live, and the caller holds them.
    private static unsafe void Run(Tensor input, Tensor weight, Tensor? bias, Tensor result, int rows, int features, long outputs, int from, int to, bool wide)
    {
        var x = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(input.bytes));
        var w = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(weight.bytes));
        var y = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(result.bytes));
        if (wide)
        {
            SkinnyLinearAvx512.Run(w, x, y, rows, features, outputs, from, to);
        }
        else
        {
            RunNarrow(w, x, y, rows, features, outputs, from, to);
        }

        if (bias is not null)
        {
            var b = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(bias.bytes));
            for (var m = 0; m < rows; m++)
            {
                for (long i = from; i < to; i++)
                {
                    y[(m * outputs) + i] += b[i];
                }
            }
        }
    }

    private static unsafe void RunNarrow(float* w, float* x, float* y, int rows, int features, long outputs, int from, int to)
    {
        var k = (long)features;

        // With two passes or more over a block of 4 weight rows (from the cache after the first), the next block is
        // fetched during them, one cache line every `every` steps: spread over all the passes, the stream from memory
        // stays steady instead of a burst the miss buffers cannot take (measured at 8 rows, in = 896: 7.1 GB/s of weights
        // with no prefetch, 8.0 with a line every step, 10-12.7 spread; in = 4864, whose block does not fit in L1, 7.2-7.9
        // without and 7.9-8.4 spread).
        var passes = (rows / 2) + (rows % 2);
        var prefetch = passes >= 2;

        // A block is features / 4 lines and its passes take passes x features / 8 steps: one line every passes / 2 steps
        // (a power of two, as the step counter is masked) fetches it by the last pass.
        var every = 1;
        while (every * 4 <= passes)
        {
            every *= 2;
        }

        var stepMask = (8 * every) - 1;
        var end = w + (outputs * k);
        long n = from;
        for (; n + 4 <= to; n += 4)
        {
            var block = w + (n * k);
            var cursor = prefetch ? block + (4 * k) : end;
            var next = cursor + (4 * k) < end ? cursor + (4 * k) : end;
            var m = 0;
            for (; m + 2 <= rows; m += 2)
            {
                FourByTwo(block, x + (m * k), features, y + (m * outputs) + n, outputs, ref cursor, next, stepMask);
            }

            if (m < rows)
            {
                FourByOne(block, x + (m * k), features, y + (m * outputs) + n, ref cursor, next, stepMask);
            }
        }

        for (; n < to; n++)
        {
            for (var m = 0; m < rows; m++)
            {
                y[(m * outputs) + n] = Dot(w + (n * k), x + (m * k), features);
            }
        }
    }

    // Weight rows w[0..3] (each `features` long) against input rows x and x + features; results at y[0..3] and
    // y[stride + 0..3]. Each sum in the same order as Dot. One prefetch every (stepMask + 1) / 8 steps while cursor < next.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void FourByTwo(float* w, float* x, int features, float* y, long stride, ref float* cursor, float* next, int stepMask)
    {
        float* w1 = w + features, w2 = w1 + features, w3 = w2 + features, xb = x + features;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        var whole = features & ~7;
        var line = cursor;
        for (var i = 0; i < whole; i += 8)
        {
            if (line < next && (i & stepMask) == 0)
            {
                Sse.Prefetch0(line);
                line += 16;
            }

            var v0 = Avx.LoadVector256(w + i);
            var v1 = Avx.LoadVector256(w1 + i);
            var v2 = Avx.LoadVector256(w2 + i);
            var v3 = Avx.LoadVector256(w3 + i);
            var p = Avx.LoadVector256(x + i);
            a0 = Fma.MultiplyAdd(v0, p, a0);
            a1 = Fma.MultiplyAdd(v1, p, a1);
            a2 = Fma.MultiplyAdd(v2, p, a2);
            a3 = Fma.MultiplyAdd(v3, p, a3);
            p = Avx.LoadVector256(xb + i);
            b0 = Fma.MultiplyAdd(v0, p, b0);
            b1 = Fma.MultiplyAdd(v1, p, b1);
            b2 = Fma.MultiplyAdd(v2, p, b2);
            b3 = Fma.MultiplyAdd(v3, p, b3);
        }

        cursor = line;
        y[0] = Vector256.Sum(a0) + Tail(w, x, whole, features);
        y[1] = Vector256.Sum(a1) + Tail(w1, x, whole, features);
        y[2] = Vector256.Sum(a2) + Tail(w2, x, whole, features);
        y[3] = Vector256.Sum(a3) + Tail(w3, x, whole, features);
        y[stride] = Vector256.Sum(b0) + Tail(w, xb, whole, features);
        y[stride + 1] = Vector256.Sum(b1) + Tail(w1, xb, whole, features);
        y[stride + 2] = Vector256.Sum(b2) + Tail(w2, xb, whole, features);
        y[stride + 3] = Vector256.Sum(b3) + Tail(w3, xb, whole, features);
    }

    // FourByTwo's first half, for an odd last row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void FourByOne(float* w, float* x, int features, float* y, ref float* cursor, float* next, int stepMask)
    {
        float* w1 = w + features, w2 = w1 + features, w3 = w2 + features;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var whole = features & ~7;
        var line = cursor;
        for (var i = 0; i < whole; i += 8)
        {
            if (line < next && (i & stepMask) == 0)
            {
                Sse.Prefetch0(line);
                line += 16;
            }

            var p = Avx.LoadVector256(x + i);
            a0 = Fma.MultiplyAdd(Avx.LoadVector256(w + i), p, a0);
            a1 = Fma.MultiplyAdd(Avx.LoadVector256(w1 + i), p, a1);
            a2 = Fma.MultiplyAdd(Avx.LoadVector256(w2 + i), p, a2);
            a3 = Fma.MultiplyAdd(Avx.LoadVector256(w3 + i), p, a3);
        }

        cursor = line;
        y[0] = Vector256.Sum(a0) + Tail(w, x, whole, features);
        y[1] = Vector256.Sum(a1) + Tail(w1, x, whole, features);
        y[2] = Vector256.Sum(a2) + Tail(w2, x, whole, features);
        y[3] = Vector256.Sum(a3) + Tail(w3, x, whole, features);
    }

    private static unsafe float Dot(float* w, float* x, int features)
    {
        var acc = Vector256<float>.Zero;
        var whole = features & ~7;
        for (var i = 0; i < whole; i += 8)
        {
            acc = Fma.MultiplyAdd(Avx.LoadVector256(w + i), Avx.LoadVector256(x + i), acc);
        }

        return Vector256.Sum(acc) + Tail(w, x, whole, features);
    }

    // Σ w[i]·x[i] for i in [from, to), one fused multiply-add at a time: the tail of k past the last whole vector (both kernels).
    internal static unsafe float Tail(float* w, float* x, int from, int to)
    {
        var sum = 0f;
        for (var i = from; i < to; i++)
        {
            sum = MathF.FusedMultiplyAdd(w[i], x[i], sum);
        }

        return sum;
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}
