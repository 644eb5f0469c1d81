using Akka.TestKit.Xunit2;
using CsCheck;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Transport;

/// <summary>
/// The frame reader fed random bytes and mutated real frames (CsCheck): the only exception out of it is its own
/// <see cref="BadFrameException"/>, and reading allocates no more managed memory than the bytes it was given (plus a
/// small constant), whatever lengths and counts the bytes claim.
/// </summary>
public sealed class DataPlaneFrameFuzzTests : TestKit
{
    private const long MaximumFrameSize = 1 << 20;

    public DataPlaneFrameFuzzTests()
        : base(DistributedInferenceConfig.Default())
    {
        Models.Runtime.LibTorch.Initialize();
    }

    private DistributedInferenceSerializer Serializer => (DistributedInferenceSerializer)Sys.Serialization.FindSerializerFor(new DropJob("any"));

    private byte[][] RealFrames()
    {
        var path = TestActor.Path.ToSerializationFormat();
        return
        [
            DataPlaneSecurityTests.Frame(Serializer, path, path, new MicroBatch("job", 3, new StagedBatch(randn(2, 3, 4), arange(6, ScalarType.Int64).view(2, 3), ones(2, 3, ScalarType.Int64)))),
            DataPlaneSecurityTests.Frame(Serializer, path, string.Empty, new RowsCompleted("job", 0, 2, new object?[] { "a", new Dictionary<string, object> { ["x"] = 1L, ["y"] = new object?[] { 1.5, null } }, ones(2) }, 2, 4)),
            DataPlaneSecurityTests.Frame(Serializer, path, string.Empty, new BatchCompleted("job", 1, zeros(3, 5), TimeSpan.FromSeconds(1))),
            DataPlaneSecurityTests.Frame(Serializer, path, string.Empty, new JobFailed("job", "reason", false)),
        ];
    }

    // Reads every frame in the bytes; returns the managed bytes allocated and the tensor storage reserved. Anything but
    // BadFrameException fails the test.
    private (long Managed, long Tensors) ReadAll(byte[] bytes, long maximumFrameSize = MaximumFrameSize)
    {
        var reader = new DataPlaneFrameReader(new MemoryStream(bytes, writable: false), maximumFrameSize, TimeSpan.FromSeconds(30), 1 << 20);
        var before = GC.GetAllocatedBytesForCurrentThread();
        ValueCodec.ResetTensorPeak();
        try
        {
            while (reader.Next(Serializer, (_, _, manifest) =>
            {
                if (!Serializer.Registry.IsBulk(manifest))
                {
                    throw new BadFrameException(manifest);
                }
            }) is var (_, _, message))
            {
                Dispose(message);
            }
        }
        catch (BadFrameException)
        {
            // The reader's own error: the connection would be dropped.
        }

        return (GC.GetAllocatedBytesForCurrentThread() - before, ValueCodec.TensorBytesPeakOnThisThread);
    }

    // Whatever rows a message read from a frame carries are the reader's: RowBatch's rule, one line for every message.
    private static void Dispose(object message) => (message as ICarriesRows)?.Payload?.Dispose();

    private void Check(byte[] bytes)
    {
        var (allocated, tensors) = ReadAll(bytes);
        Assert.True(allocated <= 64 * 1024 + (4L * bytes.Length), $"{bytes.Length} bytes read, {allocated} bytes allocated");
        Assert.True(tensors <= ValueCodec.FirstTensorChunk + (5L * bytes.Length), $"{bytes.Length} bytes read, {tensors} bytes of tensor storage reserved");
    }

    [Fact]
    public void Real_frames_read_back_whole()
    {
        foreach (var frame in RealFrames())
        {
            var reader = new DataPlaneFrameReader(new MemoryStream(frame), MaximumFrameSize, TimeSpan.FromSeconds(30), 1 << 20);
            Assert.NotNull(reader.Next(Serializer));
            Assert.Null(reader.Next(Serializer));
        }
    }

    [Fact]
    public void Random_bytes_only_ever_fail_as_bad_frames_within_their_own_size()
    {
        Gen.Byte.Array[0, 600].Sample(Check, iter: 3000);
    }

    [Fact]
    public void Random_bytes_behind_a_plausible_header_only_ever_fail_as_bad_frames_within_their_own_size()
    {
        Gen.Select(Gen.Long[-10, MaximumFrameSize + 10], Gen.Byte.Array[0, 600])
            .Sample((length, body) => Check([.. BitConverter.GetBytes(length), .. body]), iter: 3000);
    }

    [Fact]
    public void Mutated_real_frames_only_ever_fail_as_bad_frames_within_their_own_size()
    {
        var frames = RealFrames();

        // Overwrite a few bytes (lengths, counts, tags, dtypes, dimensions), cut the frame short, or both.
        var mutation = Gen.Select(Gen.Int[0, frames.Length - 1], Gen.Select(Gen.Int[0, 2000], Gen.Byte).Array[1, 6], Gen.Int[0, 100], Gen.Bool);
        mutation.Sample((index, changes, cutPercent, cut) =>
        {
            var frame = (byte[])frames[index].Clone();
            foreach (var (position, value) in changes)
            {
                frame[position % frame.Length] = value;
            }

            Check(cut ? frame[..(frame.Length * cutPercent / 100)] : frame);
        }, iter: 3000);
    }

    [Fact]
    public void Adversarial_counts_and_shapes_cost_no_more_than_their_bytes()
    {
        // Every int32 count or int64 dimension position of a real frame set to a huge claim, one at a time.
        foreach (var frame in RealFrames())
        {
            for (var position = 8; position + 8 <= frame.Length; position++)
            {
                foreach (var claim in new[] { int.MaxValue, 1_000_000_000, 1 << 20 })
                {
                    var copy = (byte[])frame.Clone();
                    BitConverter.GetBytes(claim).CopyTo(copy, position);
                    Check(copy);
                }

                var wide = (byte[])frame.Clone();
                BitConverter.GetBytes(1L << 40).CopyTo(wide, position);
                Check(wide);
            }
        }
    }

    [Fact]
    public void A_frame_claiming_a_huge_tensor_reserves_storage_only_for_the_bytes_that_follow()
    {
        // A real frame whose 2x2 float tensor claims 2^28 x 1 elements (1 GiB) and a frame length to match, under a
        // 2 GiB frame cap: the claim fits what the frame says is left, but only the original bytes follow.
        var path = TestActor.Path.ToSerializationFormat();
        var frame = DataPlaneSecurityTests.Frame(Serializer, path, string.Empty, new BatchCompleted("job", 1, ones(2, 2), TimeSpan.Zero));
        var shape = Enumerable.Range(8, frame.Length - 24).First(i => BitConverter.ToInt64(frame, i) == 2 && BitConverter.ToInt64(frame, i + 8) == 2);
        BitConverter.GetBytes(1L << 28).CopyTo(frame, shape);
        BitConverter.GetBytes(1L).CopyTo(frame, shape + 8);
        BitConverter.GetBytes((1L << 30) + 4096).CopyTo(frame, 0);
        var (_, tensors) = ReadAll(frame, maximumFrameSize: 2L << 30);
        Assert.True(tensors <= ValueCodec.FirstTensorChunk, $"{frame.Length} bytes sent, {tensors} bytes of tensor storage reserved");

        // With 4 MiB of tensor bytes behind the claim: the storage grows with them (chunks, each as large as all before
        // it), nowhere near the 1 GiB claimed.
        byte[] longer = [.. frame, .. new byte[4 << 20]];
        (_, tensors) = ReadAll(longer, maximumFrameSize: 2L << 30);
        Assert.True(tensors <= ValueCodec.FirstTensorChunk + (2L * longer.Length), $"{longer.Length} bytes sent, {tensors} bytes of tensor storage reserved");
    }
}
