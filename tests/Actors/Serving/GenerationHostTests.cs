using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Tests.Serving;

/// <summary>
/// A node's generation host over a scripted engine: tokens stream to the requester in order, a cancel or the requester's
/// end stops the sequence on the engine, and the engine's refusals come back as what they are.
/// </summary>
public sealed class GenerationHostTests : TestKit
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private static readonly ModelIdentity Model = new("lm", new string('a', 64));

    private readonly ScriptedEngine _engine = new();

    // A host whose engines run: it says so (unanswered while they start).
    private async Task<IActorRef> StartedHost()
    {
        var host = Sys.ActorOf(GenerationHost.Props(new ServedGenerationSetup(Model, Precision.Fp32, () => new RunningEngines(_engine, 1, 512, _engine))));
        var asking = CreateTestProbe();
        await AwaitAssertAsync(
            async () =>
            {
                host.Tell(GetServedGeneration.Instance, asking.Ref);
                Assert.Equal(new ServedGeneration(Model, Precision.Fp32, 1, 512), await asking.ExpectMsgAsync<ServedGeneration>(TimeSpan.FromMilliseconds(500)));
            },
            Bound);
        return host;
    }

    private static GenerationRequest Request(string id, long first, int maxTokens = 3) =>
        new(id, [first, 7], new SamplingParameters(maxTokens, 0), []);

    [Fact]
    public async Task Tokens_stream_to_the_requester_in_order_and_the_last_says_why_it_ended()
    {
        var host = await StartedHost();
        var client = CreateTestProbe();
        host.Tell(new GenerateSequence(Request("a", 10), Model, client.Ref));
        var tokens = new List<long>();
        FinishReason? finished = null;
        while (finished is null)
        {
            var update = await client.ExpectMsgAsync<SequenceTokens>(Bound);
            Assert.Equal("a", update.RequestId);
            tokens.AddRange(update.Tokens.Select(t => t.TokenId));
            finished = update.Finished;
        }

        Assert.Equal([10, 11, 12], tokens);
        Assert.Equal(FinishReason.Length, finished);
    }

    [Fact]
    public async Task A_cancel_or_the_requester_stopping_ends_the_sequence_on_the_engine()
    {
        var host = await StartedHost();
        var client = CreateTestProbe();
        _engine.HoldAfter = 1;
        host.Tell(new GenerateSequence(Request("a", 10, 100), Model, client.Ref));
        Assert.Equal(10, (await client.ExpectMsgAsync<SequenceTokens>(Bound)).Tokens[0].TokenId);
        host.Tell(new CancelSequence("a"), client.Ref);
        await _engine.Cancelled("a").WaitAsync(Bound);

        var leaving = CreateTestProbe();
        host.Tell(new GenerateSequence(Request("b", 20, 100), Model, leaving.Ref));
        await leaving.ExpectMsgAsync<SequenceTokens>(Bound);
        Sys.Stop(leaving.Ref);
        await _engine.Cancelled("b").WaitAsync(Bound);
    }

    [Fact]
    public async Task A_host_whose_engines_cannot_start_says_why_when_asked()
    {
        var host = Sys.ActorOf(GenerationHost.Props(new ServedGenerationSetup(Model, Precision.Fp32, () => throw new InvalidInputException("a KV cache of 1048576 bytes holds no block of 2048 positions"))));
        var asking = CreateTestProbe();
        ServedGeneration? served = null;
        await AwaitAssertAsync(
            async () =>
            {
                host.Tell(GetServedGeneration.Instance, asking.Ref);
                served = await asking.ExpectMsgAsync<ServedGeneration>(TimeSpan.FromMilliseconds(500));
            },
            Bound);
        Assert.Equal("its engines could not start: a KV cache of 1048576 bytes holds no block of 2048 positions", served!.Unavailable);
        host.Tell(new GenerateSequence(Request("a", 10), Model, asking.Ref));
        Assert.Contains("its engines could not start", (await asking.FishForMessageAsync<SequenceFailed>(_ => true, Bound)).Message);
    }

    [Fact]
    public async Task Refusals_come_back_as_invalid_overloaded_or_another_model()
    {
        var host = await StartedHost();
        var client = CreateTestProbe();
        host.Tell(new GenerateSequence(Request("bad", ScriptedEngine.Invalid), Model, client.Ref));
        var invalid = await client.ExpectMsgAsync<SequenceFailed>(Bound);
        Assert.Equal((SequenceFailure.Invalid, "id 1 is outside the vocabulary"), (invalid.Reason, invalid.Message));
        host.Tell(new GenerateSequence(Request("full", ScriptedEngine.Overloaded), Model, client.Ref));
        Assert.Equal(SequenceFailure.Overloaded, (await client.ExpectMsgAsync<SequenceFailed>(Bound)).Reason);
        host.Tell(new GenerateSequence(Request("other", 10), new ModelIdentity("other", new string('b', 64)), client.Ref));
        var other = await client.ExpectMsgAsync<SequenceFailed>(Bound);
        Assert.Equal(SequenceFailure.Unavailable, other.Reason);
        Assert.Contains("it generates with lm", other.Message);
    }
}
