using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DistributedInference.Models.Kernels;

/// <summary>
/// <see cref="SkinnyLinear"/>'s kernel for CPUs with AVX-512: 16 lanes a step, and 32 vector registers, so 4 weight rows
/// meet 4 input rows in one pass (16 accumulators) where the 16-register AVX2 kernel takes 2. Each output element is one
/// dot product in one fixed order (16 lanes over ascending k, then the lanes, then the tail of k), whatever the other
/// rows and the thread count: a row's result is bit-identical alone and in any batch on one machine. It is not
/// bit-identical to the AVX2 kernel (8 lanes).
/// </summary>
/// <remarks>
/// Measured on an Ice Lake Xeon (docs/benchmarks.md): at 8 rows, in one harness run, qwen2.5-0.5b's projections streamed
/// their weights 1-70% faster than with the AVX2 kernel (gate/up least, q_proj most), and a whole decode step ran -3% to
/// +9% faster (medians of three runs); at one row both run at the read bandwidth. During the passes over a block of 4
/// weight rows, the next block is fetched into L2 (<c>prefetcht1</c>) one line per step: at 2 or 3 passes (5 to 12 rows)
/// that is half or three quarters of it, the rest left to the hardware prefetcher; two lines a step, or into L1, ran
/// slower there.
/// </remarks>
internal static class SkinnyLinearAvx512
{
    /// <summary>Whether this CPU runs the kernel: AVX-512F, and .NET treats 512-bit vectors as accelerated on it (by default
    /// not on Intel CPUs that slow down for them, Skylake-SP and Cascade Lake: those run the 8-lane kernel).</summary>
    public static bool IsSupported => Avx512F.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>y[m, n] = Σₖ x[m, k]·w[n, k] for output features n in [<paramref name="from"/>, <paramref name="to"/>) of every row m; no bias.</summary>
    public static unsafe void Run(float* w, float* x, float* y, int rows, int features, long outputs, int from, int to)
    {
        var k = (long)features;

        // Passes over one block of 4 weight rows: 4 input rows each, then 2, then 1. With two or more, the next block
        // (features / 4 lines) is fetched during them, one line every `every` steps (passes x features / 16 steps): all
        // of it from 4 passes on, part of it at 2 or 3.
        var passes = (rows / 4) + ((rows % 4) switch { 0 => 0, 3 => 2, _ => 1 });
        var prefetch = passes >= 2;
        var every = 1;
        while (every * 8 <= passes)
        {
            every *= 2;
        }

        var stepMask = (16 * every) - 1;
        var end = w + (outputs * k);
        long n = from;
        for (; n + 4 <= to; n += 4)
        {
            var block = w + (n * k);
            var cursor = prefetch ? block + (4 * k) : end;
            var next = cursor + (4 * k) < end ? cursor + (4 * k) : end;
            var m = 0;
            for (; m + 4 <= rows; m += 4)
            {
                FourByFour(block, x + (m * k), features, y + (m * outputs) + n, outputs, ref cursor, next, stepMask);
            }

            if (m + 2 <= rows)
            {
                FourByTwo(block, x + (m * k), features, y + (m * outputs) + n, outputs, ref cursor, next, stepMask);
                m += 2;
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void FourByFour(float* w, float* x, int features, float* y, long stride, ref float* cursor, float* next, int stepMask)
    {
        float* w1 = w + features, w2 = w1 + features, w3 = w2 + features, xb = x + features, xc = xb + features, xd = xc + features;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        var whole = features & ~15;
        var line = cursor;
        for (var i = 0; i < whole; i += 16)
        {
            if (line < next && (i & stepMask) == 0)
            {
                Sse.Prefetch1(line);
                line += 16;
            }

            var v0 = Avx512F.LoadVector512(w + i);
            var v1 = Avx512F.LoadVector512(w1 + i);
            var v2 = Avx512F.LoadVector512(w2 + i);
            var v3 = Avx512F.LoadVector512(w3 + i);
            var p = Avx512F.LoadVector512(x + i);
            a0 = Avx512F.FusedMultiplyAdd(v0, p, a0);
            a1 = Avx512F.FusedMultiplyAdd(v1, p, a1);
            a2 = Avx512F.FusedMultiplyAdd(v2, p, a2);
            a3 = Avx512F.FusedMultiplyAdd(v3, p, a3);
            p = Avx512F.LoadVector512(xb + i);
            b0 = Avx512F.FusedMultiplyAdd(v0, p, b0);
            b1 = Avx512F.FusedMultiplyAdd(v1, p, b1);
            b2 = Avx512F.FusedMultiplyAdd(v2, p, b2);
            b3 = Avx512F.FusedMultiplyAdd(v3, p, b3);
            p = Avx512F.LoadVector512(xc + i);
            c0 = Avx512F.FusedMultiplyAdd(v0, p, c0);
            c1 = Avx512F.FusedMultiplyAdd(v1, p, c1);
            c2 = Avx512F.FusedMultiplyAdd(v2, p, c2);
            c3 = Avx512F.FusedMultiplyAdd(v3, p, c3);
            p = Avx512F.LoadVector512(xd + i);
            d0 = Avx512F.FusedMultiplyAdd(v0, p, d0);
            d1 = Avx512F.FusedMultiplyAdd(v1, p, d1);
            d2 = Avx512F.FusedMultiplyAdd(v2, p, d2);
            d3 = Avx512F.FusedMultiplyAdd(v3, p, d3);
        }

        cursor = line;
        Finish(y, a0, a1, a2, a3, w, x, whole, features);
        Finish(y + stride, b0, b1, b2, b3, w, xb, whole, features);
        Finish(y + (2 * stride), c0, c1, c2, c3, w, xc, whole, features);
        Finish(y + (3 * stride), d0, d1, d2, d3, w, xd, whole, features);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void FourByTwo(float* w, float* x, int features, float* y, long stride, ref float* cursor, float* next, int stepMask)
    {
        float* w1 = w + features, w2 = w1 + features, w3 = w2 + features, xb = x + features;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        var whole = features & ~15;
        var line = cursor;
        for (var i = 0; i < whole; i += 16)
        {
            if (line < next && (i & stepMask) == 0)
            {
                Sse.Prefetch1(line);
                line += 16;
            }

            var v0 = Avx512F.LoadVector512(w + i);
            var v1 = Avx512F.LoadVector512(w1 + i);
            var v2 = Avx512F.LoadVector512(w2 + i);
            var v3 = Avx512F.LoadVector512(w3 + i);
            var p = Avx512F.LoadVector512(x + i);
            a0 = Avx512F.FusedMultiplyAdd(v0, p, a0);
            a1 = Avx512F.FusedMultiplyAdd(v1, p, a1);
            a2 = Avx512F.FusedMultiplyAdd(v2, p, a2);
            a3 = Avx512F.FusedMultiplyAdd(v3, p, a3);
            p = Avx512F.LoadVector512(xb + i);
            b0 = Avx512F.FusedMultiplyAdd(v0, p, b0);
            b1 = Avx512F.FusedMultiplyAdd(v1, p, b1);
            b2 = Avx512F.FusedMultiplyAdd(v2, p, b2);
            b3 = Avx512F.FusedMultiplyAdd(v3, p, b3);
        }

        cursor = line;
        Finish(y, a0, a1, a2, a3, w, x, whole, features);
        Finish(y + stride, b0, b1, b2, b3, w, xb, whole, features);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void FourByOne(float* w, float* x, int features, float* y, ref float* cursor, float* next, int stepMask)
    {
        float* w1 = w + features, w2 = w1 + features, w3 = w2 + features;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var whole = features & ~15;
        var line = cursor;
        for (var i = 0; i < whole; i += 16)
        {
            if (line < next && (i & stepMask) == 0)
            {
                Sse.Prefetch1(line);
                line += 16;
            }

            var p = Avx512F.LoadVector512(x + i);
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w + i), p, a0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w1 + i), p, a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w2 + i), p, a2);
            a3 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w3 + i), p, a3);
        }

        cursor = line;
        Finish(y, a0, a1, a2, a3, w, x, whole, features);
    }

    // y[0..3]: the four weight rows' lane sums against input row x, each plus its tail of k.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Finish(float* y, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3, float* w, float* x, int whole, int features)
    {
        y[0] = Vector512.Sum(s0) + SkinnyLinear.Tail(w, x, whole, features);
        y[1] = Vector512.Sum(s1) + SkinnyLinear.Tail(w + features, x, whole, features);
        y[2] = Vector512.Sum(s2) + SkinnyLinear.Tail(w + (2 * features), x, whole, features);
        y[3] = Vector512.Sum(s3) + SkinnyLinear.Tail(w + (3 * features), x, whole, features);
    }

    private static unsafe float Dot(float* w, float* x, int features)
    {
        var acc = Vector512<float>.Zero;
        var whole = features & ~15;
        for (var i = 0; i < whole; i += 16)
        {
            acc = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w + i), Avx512F.LoadVector512(x + i), acc);
        }

        return Vector512.Sum(acc) + SkinnyLinear.Tail(w, x, whole, features);
    }
}
