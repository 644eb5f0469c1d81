using System.Runtime.CompilerServices;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Models.Tests.Serving.Batching;

public sealed class EngineRouterTests
{
    private static GenerationRequest Request(string id, long first, int prompt = 20, int maxTokens = 100) =>
        new(id, Enumerable.Range(0, prompt).Select(i => first + i).ToList(), new SamplingParameters(maxTokens, Temperature: 0), []);

    [Fact]
    public async Task A_request_goes_to_the_engine_with_fewer_outstanding_tokens_and_its_count_returns_to_zero()
    {
        var engines = new[] { new HeldEngine(), new HeldEngine() };
        using var router = new EngineRouter(engines, new Random(1));
        using var cancel = new CancellationTokenSource();
        var a = Drain(router.GenerateAsync(Request("a", 1), cancel.Token));
        var busy = engines[0].Started > 0 ? 0 : 1;
        Assert.Equal(120, router.Outstanding(busy));

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(1 - busy, router.Choose(Request($"b{i}", 1000 * (i + 1))));
        }

        engines[busy].Release(3);
        await Task.Yield();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a);
        Assert.Equal(0, router.Outstanding(0));
        Assert.Equal(0, router.Outstanding(1));
    }

    [Fact]
    public async Task On_a_tie_a_prompt_goes_where_its_prefix_went_last()
    {
        // Two engines are always the two drawn: every tie is the prefix's to break.
        var engines = new[] { new HeldEngine(), new HeldEngine() };
        using var router = new EngineRouter(engines, new Random(7));
        var first = router.Choose(Request("p0", 500));
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(first, router.Choose(Request($"p{i}", 500, prompt: 20 + i)));
        }

        var tokens = await Drain(router.GenerateAsync(Request("q", 9, maxTokens: 2)), engines);
        Assert.Equal(2, tokens);
        Assert.All(Enumerable.Range(0, 2), i => Assert.Equal(0, router.Outstanding(i)));
    }

    private static async Task<int> Drain(IAsyncEnumerable<GenerationUpdate> updates, HeldEngine[]? release = null)
    {
        foreach (var engine in release ?? [])
        {
            engine.Release(100);
        }

        var count = 0;
        await foreach (var update in updates)
        {
            count += update.Tokens.Count;
        }

        return count;
    }

    /// <summary>An engine whose requests produce one token per permit the test releases.</summary>
    private sealed class HeldEngine : IGenerationEngine
    {
        private readonly SemaphoreSlim _permits = new(0);

        public int Started { get; private set; }

        public void Release(int tokens) => _permits.Release(tokens);

        public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
        {
            Started++;
            for (var i = 0; i < request.Sampling.MaxTokens; i++)
            {
                await _permits.WaitAsync(cancellation);
                yield return new GenerationUpdate([new GeneratedToken(i)], i == request.Sampling.MaxTokens - 1 ? FinishReason.Length : null);
            }
        }
    }
}
