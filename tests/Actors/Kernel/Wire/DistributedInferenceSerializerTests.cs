using System.Runtime.Serialization;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Wire;

public sealed class DistributedInferenceSerializerTests : TestKit
{
    public DistributedInferenceSerializerTests()
        : base(DistributedInferenceConfig.Default())
    {
        Models.Runtime.LibTorch.Initialize();
    }

    private DistributedInferenceSerializer Serializer =>
        (DistributedInferenceSerializer)Sys.Serialization.FindSerializerFor(new DropJob("any"));

    private object RoundTrip(object message)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<DistributedInferenceSerializer>(serializer);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        return Sys.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
    }

    private static IReadOnlyDictionary<string, object> Rows() => new Dictionary<string, object>
    {
        ["input_ids"] = arange(6, ScalarType.Int64).view(2, 3),
        ["attention_mask"] = ones(2, 3, ScalarType.Int64),
        ["meta"] = new object?[] { "a dog", 3, 4L, 1.5, 2.5f, true, null },
    };

    public static IEnumerable<object[]> Messages()
    {
        Models.Runtime.LibTorch.Initialize();
        var hidden = randn(2, 3, 4).to(ScalarType.BFloat16);
        yield return [new RunBatch("job", 3, RowBatch.From(Rows()))];
        yield return [new BatchCompleted("job", 3, randn(2, 5), TimeSpan.FromMilliseconds(12))];
        yield return [new BatchFailed("job", 3, "cuda:1: out of memory", true)];
        yield return [new DropJob("job")];
        yield return [GetDeviceStatus.Instance];
        var logits = new ReplicaSpec(ModelIdentity.BuiltIn("gpt2", 0), InferenceTask.Logits, Precision.Bf16);
        yield return [new DeviceStatus("cuda:0", logits, logits.On("cuda:0"), 2, TimeSpan.FromSeconds(3), 17)];
        var sampled = new ReplicaSpec(new ModelIdentity("lm", new string('c', 64)), InferenceTask.Generate, Precision.Fp16, new GenerationOptions(7, DoSample: true, Temperature: 0.7, TopK: 5, TopP: 0.9, Seed: 3));
        yield return [new DeviceStatus("cpu", sampled, sampled.On("cpu"), 0, TimeSpan.Zero, 0)];
        yield return [new DeviceStatus("cpu", null, "loading", 0, TimeSpan.Zero, 0)];
        yield return [new DeviceReady("cpu", "mlp on cpu")];
        yield return [new DeviceLoadFailed("cuda:3", "no such device", true)];
        yield return [new CancelJob("job")];
        yield return [new JobAccepted("job", 10, 4, 3)];
        yield return [new RowsCompleted("job", 2, 2, new object?[] { "x", "y" }, 4, 10)];
        yield return [new JobCompleted("job", randn(4, 2), new JobStatistics(TimeSpan.FromSeconds(1), new Dictionary<string, DeviceShare> { ["device-0"] = new(3, 9, TimeSpan.FromMilliseconds(900)) }, 1))];
        yield return [new JobCompleted("job", new object?[] { 1, null, 3 }, new JobStatistics(TimeSpan.FromSeconds(1), new Dictionary<string, DeviceShare>(), 4)) { FailedRows = [new RowFailure(1, "failed 3 times; last: boom")] }];
        yield return [new RowsFailed("job", [1, 5], "failed 3 times; last: boom", 7, 10)];
        yield return [new JobFailed("job", "every device stopped", false)];
        yield return [new JobInput("job", RowBatch.From(Rows()))];
        yield return [new MicroBatch("job", 1, new StagedBatch(hidden, arange(6, ScalarType.Int64).view(2, 3), null))];
        yield return [new MicroBatchFailed("job", 1, 2, "stage 2: bad", true)];
        yield return [new StageTiming(1, "job", 2, TimeSpan.FromMilliseconds(1), TimeSpan.FromTicks(40_001))];
        yield return [new StageReady(0, "wte+wpe on cpu")];
        yield return [new StageLoadFailed(1, "oom", false)];
        yield return [new OutputGathered("job", zeros(0, 7))];
        yield return [new PipelineCompleted("job", ones(2, 2), new PipelineRunMetrics(TimeSpan.FromSeconds(2), [new StageMetrics(0, 4, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.Zero)]))];
        yield return [new PipelineFailed("job", "pipeline stage 1 stopped", false)];
        yield return [Actors.Cluster.Stages.GetStageHostInfo.Instance];
        yield return [GetGatheredOutputs.Instance];
        yield return [new Actors.Cluster.Jobs.GetJobStatus("job")];
        yield return [new Actors.Cluster.Jobs.JobStatus("job", Actors.Cluster.Jobs.JobState.Failed, 3, 9, "every device stopped")];
        yield return [new Actors.Cluster.Jobs.JobStatus("job", Actors.Cluster.Jobs.JobState.Running, 3, 9)];
    }

    [Theory]
    [MemberData(nameof(Messages))]
    public void Every_cross_node_message_round_trips_through_its_binary_serializer(object message)
    {
        // Described first: what a message carries is released once it is written (the receiver has its own copy).
        var sent = Describe(message);
        var back = RoundTrip(message);
        Assert.Equal(message.GetType(), back.GetType());
        Assert.Equal(sent, Describe(back));
    }

    [Fact]
    public void A_stage_timing_carries_durations_only_so_no_two_clocks_are_ever_subtracted()
    {
        var sent = new StageTiming(1, "job", 2, TimeSpan.FromMilliseconds(3), TimeSpan.FromMilliseconds(40)) { Arrived = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc) };
        var back = (StageTiming)RoundTrip(sent);

        // The receiving coordinator stamps the arrival with its own clock; start and receipt follow from the durations.
        Assert.Equal(default, back.Arrived);
        Assert.Equal((sent.Queued, sent.Busy), (back.Queued, back.Busy));
        var stamped = back with { Arrived = DateTime.UtcNow };
        Assert.Equal(stamped.Finished - TimeSpan.FromMilliseconds(40), stamped.Started);
        Assert.Equal(stamped.Started - TimeSpan.FromMilliseconds(3), stamped.Received);
    }

    [Fact]
    public void Messages_with_actor_references_resolve_them_again()
    {
        var probe = CreateTestProbe();
        var submit = (SubmitJob)RoundTrip(new SubmitJob("job", new[] { "a", "b" }, new JobOptions(true, 3) { MaxAttempts = 5, BatchTimeout = TimeSpan.FromSeconds(7), Model = ModelIdentity.BuiltIn("gpt2-tiny", 4) }, probe.Ref, false));
        Assert.Equal(probe.Ref, submit.ReplyTo);
        Assert.Equal(new JobOptions(true, 3) { MaxAttempts = 5, BatchTimeout = TimeSpan.FromSeconds(7), Model = ModelIdentity.BuiltIn("gpt2-tiny", 4) }, submit.Options);
        Assert.Equal("gpt2-tiny seed 4", submit.Options.Model!.Name);
        Assert.False(submit.StreamResults);
        var run = (RunPipeline)RoundTrip(new RunPipeline("job", RowBatch.From(Rows()), 4, true, probe.Ref));
        Assert.Equal(probe.Ref, run.ReplyTo);
        Assert.Equal((4, true), (run.NumChunks, run.GatherOutput));
        var other = CreateTestProbe();
        Assert.Equal([probe.Ref, other.Ref], ((DeviceList)RoundTrip(new DeviceList([probe.Ref, other.Ref]))).Devices);
        Assert.Equal(other.Ref, ((AddDevice)RoundTrip(new AddDevice(other.Ref))).Device);
        Assert.Equal(other.Ref, ((RemoveDevice)RoundTrip(new RemoveDevice(other.Ref))).Device);
        Assert.Same(GetDevices.Instance, RoundTrip(GetDevices.Instance));
        Assert.Same(Actors.Cluster.Devices.GetLocalDevices.Instance, RoundTrip(Actors.Cluster.Devices.GetLocalDevices.Instance));
        Assert.Equal(other.Ref, ((ConnectStage)RoundTrip(new ConnectStage(other.Ref))).Next);
        Assert.Equal(new StageHosted(2, probe.Ref), RoundTrip(new StageHosted(2, probe.Ref)));
        var submitted = (SubmitJob)RoundTrip(new SubmitJob("job", new[] { "a" }, new JobOptions(), probe.Ref, true));
        Assert.True(submitted.StreamResults);
        Assert.Null(submitted.Options.Model);
        var onRequest = (SubmitJob)RoundTrip(new SubmitJob("job", Array.Empty<object>(), new JobOptions(), probe.Ref, true, InputOnRequest: true));
        Assert.True(onRequest.InputOnRequest);
        Assert.False(submitted.InputOnRequest);
        Assert.Equal(new FetchJobInput("job", probe.Ref), RoundTrip(new FetchJobInput("job", probe.Ref)));
        Assert.Equal(["a"], ((RunBatch)RoundTrip(new RunBatch("job", 2, new[] { "a" }))).Rows.As<object?[]>());
        var spec = new Actors.Cluster.Stages.StageSpec(1, 2, 3, "cuda:1", Precision.Bf16, true, new ModelIdentity("gpt2-tiny", new string('d', 64)), InferenceTask.Classify);
        Assert.Equal(new Actors.Cluster.Stages.HostStage(spec, probe.Ref), RoundTrip(new Actors.Cluster.Stages.HostStage(spec, probe.Ref)));
    }

    [Fact]
    public void Serving_messages_keep_their_requests_and_tokens()
    {
        var probe = CreateTestProbe();
        var model = new ModelIdentity("llama", new string('e', 64));
        var request = new Models.Serving.GenerationRequest("cmpl-1-0", [5, 17, 42], new Models.Serving.SamplingParameters(24, 0.9, 5, 0.95, 1.1, 1003, 3), [2, 7]) { SequenceIndex = 2 };
        var generate = (Actors.Serving.GenerateSequence)RoundTrip(new Actors.Serving.GenerateSequence(request, model, probe.Ref));
        Assert.Equal((request.RequestId, request.Sampling, request.SequenceIndex, model, probe.Ref), (generate.Request.RequestId, generate.Request.Sampling, generate.Request.SequenceIndex, generate.Model, generate.ReplyTo));
        Assert.Equal(request.PromptTokenIds, generate.Request.PromptTokenIds);
        Assert.Equal(request.StopTokenIds, generate.Request.StopTokenIds);
        var greedy = request with { Sampling = new Models.Serving.SamplingParameters(1, 0) };
        Assert.Null(((Actors.Serving.GenerateSequence)RoundTrip(new Actors.Serving.GenerateSequence(greedy, model, probe.Ref))).Request.Sampling.Logprobs);

        Models.Serving.GeneratedToken[] tokens = [new(9), new(11, -0.25, [new(11, -0.25), new(3, -2.5)]), new(4, -1, [])];
        var back = (Actors.Serving.SequenceTokens)RoundTrip(new Actors.Serving.SequenceTokens("cmpl-1-0", tokens, Models.Serving.FinishReason.Stop));
        Assert.Equal(("cmpl-1-0", Models.Serving.FinishReason.Stop), (back.RequestId, back.Finished));
        Assert.Equal(tokens.Select(t => (t.TokenId, t.Logprob, t.TopLogprobs?.Count)), back.Tokens.Select(t => (t.TokenId, t.Logprob, t.TopLogprobs?.Count)));
        Assert.Equal(tokens[1].TopLogprobs, back.Tokens[1].TopLogprobs);
        Assert.Null(((Actors.Serving.SequenceTokens)RoundTrip(new Actors.Serving.SequenceTokens("x", [], null))).Finished);

        var failed = new Actors.Serving.SequenceFailed("x", Actors.Serving.SequenceFailure.Overloaded, "256 requests are waiting");
        Assert.Equal(failed, RoundTrip(failed));
        Assert.Equal(new Actors.Serving.CancelSequence("x"), RoundTrip(new Actors.Serving.CancelSequence("x")));
        Assert.Same(Actors.Serving.GetServedGeneration.Instance, RoundTrip(Actors.Serving.GetServedGeneration.Instance));
        var served = new Actors.Serving.ServedGeneration(model, Precision.Bf16, 2, 4096);
        Assert.Equal(served, RoundTrip(served));
        Assert.Equal(served with { Unavailable = "its engines could not start" }, RoundTrip(served with { Unavailable = "its engines could not start" }));
    }

    [Fact]
    public void Gathered_outputs_keep_their_job_ids_and_tensors()
    {
        var back = (GatheredOutputs)RoundTrip(new GatheredOutputs([new OutputGathered("a", ones(2, 3)), new OutputGathered("b", arange(4, ScalarType.Int64))]));
        Assert.Equal(["a", "b"], back.Outputs.Select(o => o.JobId));
        Assert.Equal(0, Fixtures.MaxAbsDiff((Tensor)back.Outputs[0].Output, ones(2, 3)));
        Assert.Equal(0, Fixtures.MaxAbsDiff((Tensor)back.Outputs[1].Output, arange(4, ScalarType.Int64)));
    }

    [Fact]
    public void A_stage_host_describes_its_devices_and_every_layer_of_its_model()
    {
        var info = new Actors.Cluster.Stages.StageHostInfo(["cpu", "cuda:1"], ModelIdentity.BuiltIn("gpt2", 0), InferenceTask.Generate, [new StagedLayerInfo("wte+wpe", 10, 40, 0), new StagedLayerInfo("h.0", 20, 80, 123)]);
        var back = (Actors.Cluster.Stages.StageHostInfo)RoundTrip(info);
        Assert.Equal(info.Devices, back.Devices);
        Assert.Equal((info.Model.Name, info.Model.WeightsDigest, info.Task), (back.Model.Name, back.Model.WeightsDigest, back.Task));
        Assert.Equal(info.Layers, back.Layers);
    }

    [Fact]
    public void A_stage_host_says_how_much_memory_each_device_has_free()
    {
        var info = new Actors.Cluster.Stages.StageHostInfo(["cpu", "cuda:1"], ModelIdentity.BuiltIn("gpt2", 0), InferenceTask.Logits, [new StagedLayerInfo("h.0", 20, 80, 123)], [12L << 30, -1]);
        var back = (Actors.Cluster.Stages.StageHostInfo)RoundTrip(info);
        Assert.Equal(info.FreeBytes, back.FreeBytes);
        Assert.Null(((Actors.Cluster.Stages.StageHostInfo)RoundTrip(info with { FreeBytes = null })).FreeBytes);
    }

    [Fact]
    public void Process_group_rounds_keep_their_parts_bytes()
    {
        byte[] a = [1, 2, 3];
        byte[] b = [];
        var arrived = (Actors.Processes.ProcessArrived)RoundTrip(new Actors.Processes.ProcessArrived(4, 1, a));
        Assert.Equal((4, 1), (arrived.Round, arrived.Rank));
        Assert.Equal(a, arrived.Part);
        var released = (Actors.Processes.ProcessesReleased)RoundTrip(new Actors.Processes.ProcessesReleased(4, [a, b]));
        Assert.Equal((4, 2), (released.Round, released.Parts.Count));
        Assert.Equal(a, released.Parts[0]);
        Assert.Empty(released.Parts[1]);
        Assert.Equal(new Actors.Processes.ProcessRoundRefused(4, "too big"), RoundTrip(new Actors.Processes.ProcessRoundRefused(4, "too big")));
        Assert.Equal(new Actors.Processes.GetProcessArrivals(7), RoundTrip(new Actors.Processes.GetProcessArrivals(7)));
        Assert.Equal([0, 2], ((Actors.Processes.ProcessArrivals)RoundTrip(new Actors.Processes.ProcessArrivals(7, [0, 2]))).Ranks);
    }

    [Fact]
    public void Every_wire_message_of_the_assembly_is_registered_by_a_protocol_and_bound_by_its_one_marker()
    {
        var wire = typeof(IWireMessage).Assembly.GetTypes().Where(t => typeof(IWireMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false }).OrderBy(t => t.FullName).ToList();
        Assert.Equal(wire, Serializer.MessageTypes.OrderBy(t => t.FullName));
        var bound = Sys.Settings.Config.GetConfig("akka.actor.serialization-bindings").AsEnumerable()
            .Select(pair => Type.GetType(pair.Key.Trim('"'), throwOnError: true)!)
            .Where(t => t.Namespace!.StartsWith("DistributedInference", StringComparison.Ordinal));
        Assert.Equal([typeof(IWireMessage)], bound);
        Assert.All(wire, type => Assert.Same(Serializer, Sys.Serialization.FindSerializerForType(type)));
    }

    [Fact]
    public void Serializing_disposes_nothing_the_message_carries()
    {
        var batch = arange(4, ScalarType.Float32).view(2, 2);
        Serializer.ToBinary(new RunBatch("job", 1, batch));
        Assert.False(batch.IsInvalid);

        Tensor first = ones(2, 2), second = zeros(1, 2);
        var back = (GatheredOutputs)RoundTrip(new GatheredOutputs([new OutputGathered("a", first), new OutputGathered("b", second)]));
        Assert.False(first.IsInvalid || second.IsInvalid);
        Assert.Equal(["a", "b"], back.Outputs.Select(o => o.JobId));
        Assert.Equal([1, 2], ((Tensor)back.Outputs[1].Output).shape);
        back.Outputs.ToList().ForEach(o => o.Output.Dispose());
        batch.Dispose();
        first.Dispose();
        second.Dispose();
    }

    [Fact]
    public void Malformed_frames_are_rejected_with_a_serialization_error()
    {
        var good = Serializer.ToBinary(new RunBatch("job", 1, arange(4, ScalarType.Float32).view(2, 2)));
        Assert.Throws<SerializationException>(() => Serializer.FromBinary(good, "no-such-manifest"));
        Assert.Throws<SerializationException>(() => Serializer.FromBinary(good[..^3], "run-batch"));
        Assert.Throws<SerializationException>(() => Serializer.FromBinary([.. good, 0], "run-batch"));

        // Tag 7 (tensor), dtype 1 (float32), 2 dimensions of 1e9 x 1e9: refused before allocating.
        using var huge = new MemoryStream();
        using (var writer = new BinaryWriter(huge))
        {
            ValueCodec.WriteString(writer, "job");
            writer.Write(1);
            writer.Write((byte)7);
            writer.Write((byte)1);
            writer.Write((byte)2);
            writer.Write(1_000_000_000L);
            writer.Write(1_000_000_000L);
        }

        Assert.Contains("bytes but the frame has", Assert.Throws<SerializationException>(() => Serializer.FromBinary(huge.ToArray(), "run-batch")).Message, StringComparison.Ordinal);

        var badDtype = (byte[])good.Clone();
        badDtype[4 + 3 + 4 + 1] = 99;
        Assert.Contains("unknown tensor dtype", Assert.Throws<SerializationException>(() => Serializer.FromBinary(badDtype, "run-batch")).Message, StringComparison.Ordinal);

        var badCount = Serializer.ToBinary(new RowsCompleted("job", 0, 1, new object?[] { 1 }, 1, 1));
        badCount[4 + 3 + 4 + 4 + 1] = 0xff;
        Assert.Throws<SerializationException>(() => Serializer.FromBinary(badCount, "rows-completed"));
    }

    [Fact]
    public void Values_that_cannot_cross_nodes_are_refused_when_sent()
    {
        Assert.Throws<ArgumentException>(() => new RunBatch("job", 0, RowBatch.From(new Uri("http://127.0.0.1"))));
        using var complex = zeros(2, ScalarType.ComplexFloat32);
        Assert.Throws<SerializationException>(() => Serializer.ToBinary(new RunBatch("job", 0, complex.alias())));
    }

    [Fact]
    public void A_paged_generation_step_crosses_nodes_whole()
    {
        var step = new GenerationStep(
            "pool-0",
            tensor(new long[] { 5, 6, 7, 8 }).view(2, 2),
            tensor(new long[] { 3, 4, 0, 1 }).view(2, 2),
            tensor(new long[] { 1, 1, 1, 1, 0, 0, 1, 1 }).view(2, 4),
            0,
            Paged: new PagedStep(tensor(new long[] { 8, 9, 0, 0 }).view(2, 2), tensor(new long[] { 10, 11, 12, 13 }).view(2, 2), 64, 4, Create: true));
        var first = ((MicroBatch)RoundTrip(new MicroBatch("job", 0, RowBatch.From(step.ToPayload())))).Payload.Value;
        Assert.True(GenerationStep.TryRead(first, out var back));
        Assert.Equal(Describe(step), Describe(back));

        // The first prefill has no past: [rows, 0] slots.
        var empty = step with { Paged = step.Paged! with { PastSlots = zeros(2, 0, ScalarType.Int64), Create = false }, Lost = true };
        var second = ((MicroBatch)RoundTrip(new MicroBatch("job", 1, RowBatch.From(empty.ToPayload())))).Payload.Value;
        Assert.True(GenerationStep.TryRead(second, out var emptyBack));
        Assert.Equal(Describe(empty), Describe(emptyBack));
    }

    // A comparable text form of a message: tensors by dtype, shape and values; collections item by item.
    private static string Describe(object? value) => value switch
    {
        null => "null",
        Tensor t => $"{t.dtype}[{string.Join(",", t.shape)}]{{{(t.NumberOfElements == 0 ? string.Empty : string.Join(",", t.to(ScalarType.Float64).data<double>().ToArray()))}}}",
        RowBatch p => $"{p.GetType().Name}:{Describe(p.Value)}",
        StagedBatch b => $"batch({Describe(b.Hidden)},{Describe(b.InputIds)},{Describe(b.AttentionMask)})",
        string s => $"\"{s}\"",
        IReadOnlyDictionary<string, object> d => "{" + string.Join(",", d.OrderBy(p => p.Key).Select(p => $"{p.Key}:{Describe(p.Value)}")) + "}",
        IReadOnlyDictionary<string, DeviceShare> d => "{" + string.Join(",", d.OrderBy(p => p.Key).Select(p => $"{p.Key}:{p.Value}")) + "}",
        System.Collections.IEnumerable e => "[" + string.Join(",", e.Cast<object?>().Select(Describe)) + "]",
        JobStatistics s => $"stats({s.Elapsed},{Describe(s.Devices)},{s.ResentBatches})",
        PipelineRunMetrics m => $"metrics({m.Elapsed},{Describe(m.Stages)})",
        _ when value.GetType().Namespace!.StartsWith("DistributedInference", StringComparison.Ordinal) && value.GetType().GetProperties().Length > 0 =>
            value.GetType().Name + "(" + string.Join(",", value.GetType().GetProperties().Select(p => $"{p.Name}={Describe(p.GetValue(value))}")) + ")",
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty,
    };
}
