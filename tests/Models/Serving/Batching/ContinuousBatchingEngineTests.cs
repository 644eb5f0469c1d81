using DistributedInference.Models.Generation;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Tests.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Serving.Batching;

/// <summary>
/// The continuous-batching engine on the fixture decoders (real weights, fp32, CPU): requests with different prompt and
/// output lengths join while others run and each returns exactly the greedy tokens of <c>di infer</c>'s loop
/// (<see cref="GenerationLoop"/>) for that prompt alone; with a cache small enough to preempt and prompts sharing a
/// prefix too; a seeded sampled request draws the same tokens alone and batched; cancelling frees its blocks; a full
/// waiting queue refuses.
/// </summary>
public sealed class ContinuousBatchingEngineTests
{
    public static readonly TheoryData<string> Families = new() { "llama3-tiny", "qwen2-tiny", "qwen3-tiny", "mistral-tiny", "gpt2-tiny" };

    private static ICausalLanguageModel Load(string name)
    {
        DistributedInference.Models.Runtime.LibTorch.Initialize();
        return name == "gpt2-tiny"
            ? Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, ScalarType.Float32)
            : LlamaSource.Resolve(LlamaFixtures.ModelFolder(name)).CreateModel(CPU, ScalarType.Float32);
    }

    private static ContinuousBatchingEngine Engine(ICausalLanguageModel model, int blocks, IterationSchedulerOptions scheduler, int blockSize = 4, int workspacePositions = 1 << 16, Pace? pace = null)
    {
        var bytes = PagedKvStore.BytesPerPosition(model, CPU);
        return new(model, CPU, new ContinuousBatchingOptions(blockSize, bytes * blockSize * blocks, scheduler, bytes * workspacePositions, pace is null ? null : pace.Hook));
    }

    // Ids inside the vocabulary that end nothing, from a fixed generator.
    private static List<long> Prompt(ICausalLanguageModel model, int length, int seed, IReadOnlyList<long>? prefix = null)
    {
        var random = new Random(seed);
        var ids = new List<long>(prefix ?? []);
        while (ids.Count < (prefix?.Count ?? 0) + length)
        {
            var id = random.Next(3, model.VocabSize);
            if (!model.EndOfSequenceIds.Contains(id))
            {
                ids.Add(id);
            }
        }

        return ids;
    }

    private static List<long> Reference(ICausalLanguageModel model, IReadOnlyList<long> prompt, int newTokens)
    {
        using var ids = tensor(prompt.ToArray()).unsqueeze(0);
        using var output = GenerationLoop.Generate(model, ids, null, new GenerationOptions(MaxNewTokens: newTokens));
        return Continuation.Of(output[0], prompt.Count, model.EndOfSequenceIds).ToList();
    }

    private static GenerationRequest Request(ICausalLanguageModel model, string id, IReadOnlyList<long> prompt, SamplingParameters sampling) =>
        new(id, prompt, sampling, model.EndOfSequenceIds);

    private static async Task<List<long>> Collect(IAsyncEnumerable<GenerationUpdate> updates, CancellationToken cancellation = default)
    {
        var tokens = new List<long>();
        await foreach (var update in updates.WithCancellation(cancellation))
        {
            tokens.AddRange(update.Tokens.Select(t => t.TokenId));
        }

        return tokens;
    }

    // Starts each request once the one before has its first token, so each joins a batch that is already generating.
    // Request i arrives before iteration 3i (iterations counted from the first request's): each joins a batch that is
    // already generating, at the same iterations whatever the machine's speed.
    private static async Task<List<long>[]> Staggered(ContinuousBatchingEngine engine, Pace pace, IReadOnlyList<GenerationRequest> requests)
    {
        var runs = new List<Task<List<long>>>();
        try
        {
            foreach (var request in requests)
            {
                // Sent while the engine stands before an iteration (or idles before the first): admitted by the next one.
                if (runs.Count > 0)
                {
                    await pace.Parked(engine);
                }

                runs.Add(Collect(engine.GenerateAsync(request)));
                if (runs.Count == 1)
                {
                    await pace.Parked(engine);
                }

                pace.Release();
                await pace.Step(engine);
                await pace.Step(engine);
            }

            var all = Task.WhenAll(runs);
            while (!all.IsCompleted)
            {
                await pace.Step(engine, until: all);
            }

            return await all;
        }
        catch
        {
            pace.Open();
            throw;
        }
    }

    /// <summary>Lets the engine run one iteration at a time (its <see cref="ContinuousBatchingOptions.BeforeIteration"/>).</summary>
    private sealed class Pace
    {
        private readonly SemaphoreSlim _entered = new(0);
        private readonly SemaphoreSlim _gate = new(0);
        private volatile bool _open;

        /// <summary>The most sequences the engine ran side by side, as seen before each iteration.</summary>
        public int Widest { get; private set; }

        public void Hook(long iteration)
        {
            if (!_open)
            {
                _entered.Release();
                _gate.Wait();
            }
        }

        // Waits (failure bound only) until the engine stands before its next iteration, then lets it run it.
        public async Task Step(ContinuousBatchingEngine engine, Task? until = null)
        {
            if (await Parked(engine, until))
            {
                Release();
            }
        }

        // Waits (failure bound only) until the engine stands before its next iteration, or until `until` completes
        // (false: the engine has nothing more to do).
        public async Task<bool> Parked(ContinuousBatchingEngine engine, Task? until = null)
        {
            using var stop = new CancellationTokenSource();
            var entered = _entered.WaitAsync(TimeSpan.FromMinutes(2), stop.Token);
            if (until is not null && await Task.WhenAny(entered, until) == until && !entered.IsCompleted)
            {
                // Done: withdraw the wait, so that it takes no later iteration's signal.
                stop.Cancel();
                try
                {
                    if (await entered)
                    {
                        return true;
                    }
                }
                catch (OperationCanceledException)
                {
                }

                return false;
            }

            Assert.True(await entered, "the engine never reached its next iteration");
            Widest = Math.Max(Widest, engine.Load.Running);
            return true;
        }

        public void Release() => _gate.Release();

        public void Open()
        {
            _open = true;
            _gate.Release(1000);
        }
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        // A failure bound only: the condition is met within an iteration or two.
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (!condition())
        {
            Assert.False(deadline.IsCancellationRequested, what);
            await Task.Delay(10);
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public async Task Sixteen_greedy_requests_joining_at_different_times_each_get_their_tokens_alone(string family)
    {
        using var module = (IDisposable)Load(family);
        var model = (ICausalLanguageModel)module;
        var prompts = Enumerable.Range(0, 16).Select(i => Prompt(model, 3 + (i * 7 % 37), seed: i)).ToList();
        var budgets = Enumerable.Range(0, 16).Select(i => 4 + (i * 5 % 21)).ToList();
        var expected = prompts.Select((p, i) => Reference(model, p, budgets[i])).ToList();

        var pace = new Pace();
        using var engine = Engine(model, blocks: 512, new IterationSchedulerOptions(MaxSequences: 16, MaxTokensPerStep: 64, PrefillChunk: 8), pace: pace);
        var requests = prompts.Select((p, i) => Request(model, $"r{i}", p, new SamplingParameters(budgets[i], Temperature: 0))).ToList();
        var batched = await Staggered(engine, pace, requests);
        Assert.True(pace.Widest >= 4, $"at most {pace.Widest} sequences ran side by side: the requests did not overlap");
        for (var i = 0; i < 16; i++)
        {
            Assert.True(expected[i].SequenceEqual(batched[i]), $"{family} request {i} (prompt {prompts[i].Count}, budget {budgets[i]}): batched [{string.Join(' ', batched[i])}] alone [{string.Join(' ', expected[i])}]");
        }

        await Eventually(() => engine.Load is { Running: 0, UsedBlocks: 0 }, "blocks still held after every request ended");
    }

    [Fact]
    public async Task Preempted_and_prefix_sharing_requests_get_their_tokens_alone()
    {
        using var module = (IDisposable)Load("llama3-tiny");
        var model = (ICausalLanguageModel)module;
        var system = Prompt(model, 24, seed: 99);
        var prompts = Enumerable.Range(0, 8).Select(i => Prompt(model, 2 + i, seed: 200 + i, prefix: system)).ToList();
        var expected = prompts.Select(p => Reference(model, p, 24)).ToList();

        // 40 blocks of 4 positions: 8 requests of 26-33 + 24 positions cannot all grow side by side without the shared
        // prefix, and not even with it: the newest are preempted and recomputed. A workspace of 100 positions splits the
        // decode rows (pasts of 26-56) into passes of 1-3 rows.
        var pace = new Pace();
        using var engine = Engine(model, blocks: 40, new IterationSchedulerOptions(MaxSequences: 8, MaxTokensPerStep: 64, PrefillChunk: 8), workspacePositions: 100, pace: pace);
        var batched = await Staggered(engine, pace, prompts.Select((p, i) => Request(model, $"s{i}", p, new SamplingParameters(24, Temperature: 0))).ToList());
        for (var i = 0; i < prompts.Count; i++)
        {
            Assert.True(expected[i].SequenceEqual(batched[i]), $"request {i}: batched [{string.Join(' ', batched[i])}] alone [{string.Join(' ', expected[i])}]");
        }

        await Eventually(() => engine.Load is { Running: 0, UsedBlocks: 0 }, "blocks still held after every request ended");
        var load = engine.Load;
        Assert.True(load.Preemptions > 0, "nothing was preempted: the test no longer covers recompute");
        Assert.True(load.PrefixHitTokens >= 7 * 24, $"prefix cache hits: {load.PrefixHitTokens} tokens");
    }

    [Fact]
    public async Task Sixty_four_requests_sharing_a_992_token_system_prompt_hold_its_blocks_once()
    {
        using var module = (IDisposable)Load("mistral-tiny");
        var model = (ICausalLanguageModel)module;
        var system = Prompt(model, 992, seed: 7);
        var prompts = Enumerable.Range(0, 64).Select(i => Prompt(model, 10, seed: 300 + i, prefix: system)).ToList();

        // 512 blocks of 16 positions: without sharing, 64 x 1006 positions need 4096 blocks.
        var pace = new Pace();
        using var engine = Engine(model, blocks: 512, new IterationSchedulerOptions(MaxSequences: 64, MaxTokensPerStep: 1024, PrefillChunk: 256), blockSize: 16, pace: pace);
        var runs = new List<Task<List<long>>> { Collect(engine.GenerateAsync(Request(model, "first", prompts[0], new SamplingParameters(4, Temperature: 0)))) };
        for (var i = 0; i < 4; i++)
        {
            await pace.Step(engine);
        }

        // The first prompt is computed (4 chunks of at most 256) and its blocks cached: the other 63 arrive, are admitted
        // by the next iteration, and all 64 decode in the one after.
        await pace.Parked(engine);
        runs.AddRange(prompts.Skip(1).Select((p, i) => Collect(engine.GenerateAsync(Request(model, $"r{i}", p, new SamplingParameters(4, Temperature: 0))))));
        pace.Release();
        await pace.Step(engine);
        await pace.Parked(engine);
        var load = engine.Load;
        pace.Open();
        var outputs = await Task.WhenAll(runs).WaitAsync(TimeSpan.FromMinutes(5));

        Assert.Equal(64, load.Running);
        Assert.True(load.UsedBlocks <= 62 + (64 * 2), $"{load.UsedBlocks} blocks held by 64 requests sharing 62 blocks of prompt");
        Assert.Equal(63L * 992, load.PrefixHitTokens);
        Assert.Equal(0, load.Preemptions);
        Assert.Equal(Reference(model, prompts[40], 4), outputs[40]);
    }

    [Fact]
    public async Task A_seeded_sampled_request_draws_the_same_tokens_alone_and_batched()
    {
        using var module = (IDisposable)Load("qwen2-tiny");
        var model = (ICausalLanguageModel)module;
        var prompt = Prompt(model, 9, seed: 5);
        var sampling = new SamplingParameters(16, Temperature: 0.9, TopK: 40, TopP: 0.95, Seed: 1234);
        var decoder = ServingDecoder.Decode(model, [new DecoderRow(prompt, sampling, model.EndOfSequenceIds)])[0].Tokens.Select(t => t.TokenId).ToList();

        var pace = new Pace();
        using var engine = Engine(model, blocks: 256, new IterationSchedulerOptions(MaxSequences: 8, MaxTokensPerStep: 64, PrefillChunk: 8), pace: pace);
        var alone = await Staggered(engine, pace, [Request(model, "alone", prompt, sampling)]);
        var others = Enumerable.Range(0, 5).Select(i => Request(model, $"o{i}", Prompt(model, 4 + i, seed: 50 + i), sampling with { Seed = i })).ToList();
        var batched = await Staggered(engine, pace, [others[0], others[1], Request(model, "batched", prompt, sampling), .. others.Skip(2)]);

        Assert.Equal(decoder, alone[0]);
        Assert.Equal(alone[0], batched[2]);
    }

    [Fact]
    public async Task A_cancelled_request_leaves_at_the_next_iteration_and_frees_its_blocks()
    {
        using var module = (IDisposable)Load("gpt2-tiny");
        var model = (ICausalLanguageModel)module;
        var pace = new Pace();
        using var engine = Engine(model, blocks: 64, new IterationSchedulerOptions(MaxSequences: 4, MaxTokensPerStep: 16, PrefillChunk: 8), pace: pace);
        using var cancel = new CancellationTokenSource();
        var running = Collect(engine.GenerateAsync(Request(model, "long", Prompt(model, 8, 1), new SamplingParameters(100, Temperature: 0)), cancel.Token), cancel.Token);
        await pace.Step(engine);
        await pace.Step(engine);
        cancel.Cancel();
        pace.Open();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        var after = await Collect(engine.GenerateAsync(Request(model, "short", Prompt(model, 5, 2), new SamplingParameters(3, Temperature: 0))));
        Assert.Equal(3, after.Count);

        await Eventually(() => engine.Load is { Running: 0, Waiting: 0, UsedBlocks: 0 }, "the cancelled request still holds blocks");
    }

    [Fact]
    public async Task A_reader_that_stops_early_ends_its_sequence_at_the_next_iteration()
    {
        // What a stop string matched above the engine does: it stops reading, without cancelling.
        using var module = (IDisposable)Load("gpt2-tiny");
        var model = (ICausalLanguageModel)module;
        var pace = new Pace();
        using var engine = Engine(model, blocks: 64, new IterationSchedulerOptions(MaxSequences: 4, MaxTokensPerStep: 16, PrefillChunk: 8), pace: pace);
        var stream = engine.GenerateAsync(Request(model, "stopped", Prompt(model, 6, 3), new SamplingParameters(100, Temperature: 0))).GetAsyncEnumerator();
        var first = stream.MoveNextAsync();
        await pace.Step(engine);
        Assert.True(await first);
        await stream.DisposeAsync();

        // The next iteration drops it and the engine idles (a sequence still running would hold it at the next one).
        await pace.Step(engine);
        try
        {
            await Eventually(() => engine.Load is { Running: 0, UsedBlocks: 0 }, "the sequence still runs after its reader stopped");
        }
        finally
        {
            pace.Open();
        }
    }

    [Fact]
    public async Task A_full_waiting_queue_refuses_and_an_impossible_request_is_one_line()
    {
        using var module = (IDisposable)Load("gpt2-tiny");
        var model = (ICausalLanguageModel)module;
        var pace = new Pace();
        using var engine = Engine(model, blocks: 16, new IterationSchedulerOptions(MaxSequences: 1, MaxTokensPerStep: 8, PrefillChunk: 8, MaxWaiting: 1), pace: pace);
        using var cancel = new CancellationTokenSource();
        var running = Collect(engine.GenerateAsync(Request(model, "a", Prompt(model, 4, 1), new SamplingParameters(40, Temperature: 0)), cancel.Token), cancel.Token);
        await pace.Step(engine);
        await pace.Parked(engine);

        // a runs (one sequence at most), b takes the one waiting place, c finds none.
        var waiting = Collect(engine.GenerateAsync(Request(model, "b", Prompt(model, 4, 2), new SamplingParameters(4, Temperature: 0))));
        var full = Collect(engine.GenerateAsync(Request(model, "c", Prompt(model, 4, 3), new SamplingParameters(4, Temperature: 0))));
        var tooLong = Collect(engine.GenerateAsync(Request(model, "d", Prompt(model, 40, 4), new SamplingParameters(40, Temperature: 0))));
        pace.Release();
        var refused = await Assert.ThrowsAsync<EngineOverloadedException>(() => full);
        Assert.Contains("waiting", refused.Message, StringComparison.Ordinal);
        Assert.Contains("KV cache blocks", (await Assert.ThrowsAsync<InvalidInputException>(() => tooLong)).Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidInputException>(() => Collect(engine.GenerateAsync(Request(model, "e", [model.VocabSize + 5], new SamplingParameters(4, Temperature: 0)))));

        cancel.Cancel();
        pace.Open();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.Equal(4, (await waiting).Count);
    }
}
