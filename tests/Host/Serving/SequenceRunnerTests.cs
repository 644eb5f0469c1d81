using System.Runtime.CompilerServices;
using DistributedInference.Host.Serving;
using DistributedInference.Models.Serving;

namespace DistributedInference.Host.Tests.Serving;

public sealed class SequenceRunnerTests
{
    // An engine that streams its tokens one update each, then says the sequence finished in an update of its own (as the
    // replica engine does when every token was streamed already).
    private sealed class ScriptedEngine(params long[] tokens) : IGenerationEngine
    {
        public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
        {
            foreach (var token in tokens)
            {
                await Task.Yield();
                yield return new GenerationUpdate([new GeneratedToken(token)]);
            }

            yield return new GenerationUpdate([], FinishReason.Stop);
        }
    }

    [Fact]
    public async Task A_stop_token_streamed_before_the_finish_is_the_sequences_stop_reason()
    {
        var sampling = new SamplingRequest(8, 0, 1.0, 0, 1.0, 0, 1, [], [241], false, false, true, false, true, true);
        var request = new GenerationRequest("r", [5, 17, 42], sampling.Parameters(8, 0, null), [241]);
        var deltas = new List<SequenceDelta>();
        await foreach (var delta in SequenceRunner.RunAsync(new ScriptedEngine(547, 241), request, 0, tokenizer: null, sampling, CancellationToken.None))
        {
            deltas.Add(delta);
        }

        Assert.Equal([547L, 241L], deltas.SelectMany(d => d.Tokens).Select(t => t.TokenId));
        Assert.Equal(FinishReason.Stop, deltas[^1].Finish);
        Assert.Equal(241L, deltas[^1].StopReason);
    }
}
