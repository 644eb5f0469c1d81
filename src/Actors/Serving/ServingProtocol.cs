using Akka.Actor;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Serving;

/// <summary>
/// The wire format of serving across a cluster: a server (<see cref="ClusterGenerationEngine"/>) asks a node's
/// <see cref="GenerationHost"/> for one sequence and gets its tokens streamed back as they are chosen.
/// </summary>
public sealed class ServingProtocol : WireProtocol
{
    public override void Register(WireRegistry registry) => registry
        .Add<GenerateSequence>("generate-sequence", Write, ReadGenerate)
        .Add<SequenceTokens>("sequence-tokens", Write, ReadTokens)
        .Add<SequenceFailed>("sequence-failed", (w, m) => { w.String(m.RequestId); w.Enum(m.Reason); w.String(m.Message); }, r => new SequenceFailed(r.String(), r.Enum<SequenceFailure>(), r.String()))
        .Add<CancelSequence>("cancel-sequence", (w, m) => w.String(m.RequestId), r => new CancelSequence(r.String()))
        .Add("get-served-generation", GetServedGeneration.Instance)
        .Add<ServedGeneration>("served-generation", (w, m) => { Identity(w, m.Model); w.Enum(m.DType); w.Int(m.Devices); w.Int(m.MaxPositions); w.OptionalString(m.Unavailable); }, r => new ServedGeneration(Identity(r), r.Enum<Precision>(), r.Int(), r.Int(), r.OptionalString()));

    private static void Identity(WireWriter writer, ModelIdentity model)
    {
        writer.String(model.Name);
        writer.String(model.WeightsDigest);
    }

    private static ModelIdentity Identity(WireReader reader) => new(reader.String(), reader.String());

    private static void Write(WireWriter writer, GenerateSequence message)
    {
        var (request, sampling) = (message.Request, message.Request.Sampling);
        writer.String(request.RequestId);
        writer.Many(request.PromptTokenIds.ToArray(), (w, id) => w.Long(id));
        writer.Int(sampling.MaxTokens);
        writer.Double(sampling.Temperature);
        writer.Int(sampling.TopK);
        writer.Double(sampling.TopP);
        writer.Double(sampling.RepetitionPenalty);
        writer.Long(sampling.Seed);
        writer.Int(sampling.Logprobs ?? -1);
        writer.Many(request.StopTokenIds.ToArray(), (w, id) => w.Long(id));
        writer.Long(request.SequenceIndex);
        Identity(writer, message.Model);
        writer.Ref(message.ReplyTo);
    }

    private static GenerateSequence ReadGenerate(WireReader reader)
    {
        var id = reader.String();
        var prompt = reader.Many(r => r.Long());
        var sampling = new SamplingParameters(reader.Int(), reader.Double(), reader.Int(), reader.Double(), reader.Double(), reader.Long(), reader.Int() is var k && k >= 0 ? k : null);
        var stops = reader.Many(r => r.Long());
        var request = new GenerationRequest(id, prompt, sampling, stops) { SequenceIndex = reader.Long() };
        return new GenerateSequence(request, Identity(reader), reader.Ref());
    }

    private static void Write(WireWriter writer, SequenceTokens message)
    {
        writer.String(message.RequestId);
        writer.Many(message.Tokens.ToArray(), (w, token) =>
        {
            w.Long(token.TokenId);
            w.Bool(token.Logprob is not null);
            w.Double(token.Logprob ?? 0);
            w.Many(token.TopLogprobs?.ToArray() ?? [], (w, top) => { w.Long(top.TokenId); w.Double(top.Logprob); });
            w.Bool(token.TopLogprobs is not null);
        });
        writer.Int(message.Finished is { } finished ? (int)finished : -1);
    }

    private static SequenceTokens ReadTokens(WireReader reader)
    {
        var id = reader.String();
        var tokens = reader.Many(r =>
        {
            var token = r.Long();
            var (hasLogprob, logprob) = (r.Bool(), r.Double());
            var top = r.Many(r => new TokenLogprob(r.Long(), r.Double()));
            var hasTop = r.Bool();
            return new GeneratedToken(token, hasLogprob ? logprob : null, hasTop ? top : null);
        });
        var finished = reader.Int();
        return new SequenceTokens(id, tokens, finished switch
        {
            -1 => null,
            _ when Enum.IsDefined((FinishReason)finished) => (FinishReason)finished,
            _ => throw new System.Runtime.Serialization.SerializationException($"unknown finish reason {finished}"),
        });
    }
}

/// <summary>
/// Generate <see cref="Request"/> with <see cref="Model"/> and stream it to <see cref="ReplyTo"/>: one
/// <see cref="SequenceTokens"/> per update, the last with its finish reason, or one <see cref="SequenceFailed"/>.
/// </summary>
public sealed record GenerateSequence(GenerationRequest Request, ModelIdentity Model, IActorRef ReplyTo) : IWireMessage;

/// <summary>Tokens of request <paramref name="RequestId"/> chosen since the last message (possibly none); <paramref name="Finished"/> in the last one only.</summary>
public sealed record SequenceTokens(string RequestId, IReadOnlyList<GeneratedToken> Tokens, FinishReason? Finished) : IWireMessage;

/// <summary>Why a node could not (go on) generating a sequence.</summary>
public enum SequenceFailure
{
    /// <summary>The request cannot run anywhere (a bad id, too long for the model): HTTP 400.</summary>
    Invalid,

    /// <summary>This node cannot run it now (its engine stopped, another model): another node may.</summary>
    Unavailable,

    /// <summary>The node's waiting queue is full: another node may take it; HTTP 429 when none does.</summary>
    Overloaded,
}

/// <summary>Request <paramref name="RequestId"/> ended without finishing, for <paramref name="Reason"/>; the message in one line.</summary>
public sealed record SequenceFailed(string RequestId, SequenceFailure Reason, string Message) : IWireMessage;

/// <summary>Stop generating request <paramref name="RequestId"/> (its client went away); nothing more is sent for it.</summary>
public sealed record CancelSequence(string RequestId) : IWireMessage;

/// <summary>Which model a <see cref="GenerationHost"/> generates with: answered with <see cref="ServedGeneration"/> once its engines run.</summary>
public sealed record GetServedGeneration : IWireMessage
{
    public static readonly GetServedGeneration Instance = new();
}

/// <summary>A node generates with <paramref name="Model"/> in <paramref name="DType"/> on <paramref name="Devices"/> devices,
/// sequences of up to <paramref name="MaxPositions"/> positions (its KV cache's limit); the sender is its host actor.
/// <paramref name="Unavailable"/>: why its engines could not start (one line; then it generates nothing).</summary>
public sealed record ServedGeneration(ModelIdentity Model, Precision DType, int Devices, int MaxPositions, string? Unavailable = null) : IWireMessage;
