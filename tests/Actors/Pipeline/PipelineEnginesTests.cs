using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Pipeline;

/// <summary>
/// Continuous batching over a two-stage local pipeline of a fixture decoder (one engine per micro-batch in flight, each
/// with its own share of the stages' paged cache): concurrent greedy and seeded sampled requests get exactly the tokens
/// they get alone from an engine over the whole model; a shared prompt prefix is reused within an engine; a stage lost
/// and planned again mid-generation costs a recompute, never a wrong token, and no later request reads a stale block.
/// </summary>
public sealed class PipelineEnginesTests
{
    private const int BlockSize = 4;

    public PipelineEnginesTests() => Models.Runtime.LibTorch.Initialize();

    private static ContinuousBatchingOptions Options(long bytesPerPosition, int blocks) =>
        new(BlockSize, bytesPerPosition * BlockSize * blocks, new IterationSchedulerOptions(MaxSequences: 8, MaxTokensPerStep: 48, PrefillChunk: 8));

    private static List<long> Prompt(int vocab, int length, int seed, IReadOnlyList<long>? prefix = null)
    {
        var random = new Random(seed);
        return [.. prefix ?? [], .. Enumerable.Range(0, length).Select(_ => (long)random.Next(3, vocab))];
    }

    private static GenerationRequest Request(string id, IReadOnlyList<long> prompt, SamplingParameters sampling) => new(id, prompt, sampling, []);

    private static async Task<List<long>> Collect(IGenerationEngine engine, GenerationRequest request)
    {
        var tokens = new List<long>();
        await foreach (var update in engine.GenerateAsync(request))
        {
            tokens.AddRange(update.Tokens.Select(t => t.TokenId));
        }

        return tokens;
    }

    // Each request alone on an engine over the whole model.
    private static async Task<List<long>[]> Alone(LlamaSource source, IReadOnlyList<GenerationRequest> requests)
    {
        using var model = source.CreateModel(CPU, ScalarType.Float32);
        using var engine = new ContinuousBatchingEngine(model, CPU, Options(PipelineDecoder.Of(source.Config, ScalarType.Float32).BytesPerPosition, 256));
        var tokens = new List<long>[requests.Count];
        for (var i = 0; i < requests.Count; i++)
        {
            tokens[i] = await Collect(engine, requests[i]);
        }

        return tokens;
    }

    private static void AssertSame(IReadOnlyList<List<long>> expected, IReadOnlyList<List<long>> actual)
    {
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(expected[i].SequenceEqual(actual[i]), $"request {i}: pipeline [{string.Join(' ', actual[i])}] alone [{string.Join(' ', expected[i])}]");
        }
    }

    [Theory]
    [InlineData("llama3-tiny")]
    [InlineData("qwen2-tiny")]
    public async Task Twelve_concurrent_greedy_requests_each_get_their_tokens_alone(string fixture)
    {
        var source = LlamaSource.Resolve(PipelineGenerationTests.Folder(fixture));
        var decoder = PipelineDecoder.Of(source.Config, ScalarType.Float32);
        var requests = Enumerable.Range(0, 12)
            .Select(i => Request($"r{i}", Prompt(decoder.VocabSize, 3 + (i * 7 % 23), seed: i), new SamplingParameters(3 + (i * 5 % 13), Temperature: 0)))
            .ToList();
        var expected = await Alone(source, requests);

        await using var pipeline = await PipelineGenerationTests.Start(source, 2);
        using var engines = PipelineEngines.Start(pipeline, decoder, Options(decoder.BytesPerPosition, 2 * 128));
        var actual = await Task.WhenAll(requests.Select(r => Collect(engines.Router, r)));

        AssertSame(expected, actual);
        Assert.Equal(2, engines.Engines.Count);
        Assert.True(engines.Engines.All(e => e.Iterations > 0), "an engine ran nothing: the requests were not spread over the micro-batches");
    }

    [Fact]
    public async Task A_seeded_sampled_request_draws_its_tokens_alone_among_others()
    {
        var source = LlamaSource.Resolve(PipelineGenerationTests.Folder("qwen3-tiny"));
        var decoder = PipelineDecoder.Of(source.Config, ScalarType.Float32);
        var sampling = new SamplingParameters(12, Temperature: 0.9, TopK: 40, TopP: 0.95, Seed: 1234);
        var sampled = Request("sampled", Prompt(decoder.VocabSize, 9, seed: 5), sampling);
        var expected = (await Alone(source, [sampled]))[0];

        await using var pipeline = await PipelineGenerationTests.Start(source, 2);
        using var engines = PipelineEngines.Start(pipeline, decoder, Options(decoder.BytesPerPosition, 2 * 128));
        var others = Enumerable.Range(0, 5).Select(i => Request($"o{i}", Prompt(decoder.VocabSize, 4 + i, seed: 50 + i), sampling with { Seed = i, MaxTokens = 6 + i })).ToList();
        var runs = others.Take(2).Select(r => Collect(engines.Router, r)).Append(Collect(engines.Router, sampled)).Concat(others.Skip(2).Select(r => Collect(engines.Router, r))).ToList();
        var actual = await Task.WhenAll(runs);

        Assert.Equal(expected, actual[2]);
    }

    [Fact]
    public async Task A_shared_prompt_prefix_is_computed_once_per_engine()
    {
        var source = LlamaSource.Resolve(PipelineGenerationTests.Folder("llama3-tiny"));
        var decoder = PipelineDecoder.Of(source.Config, ScalarType.Float32);
        var system = Prompt(decoder.VocabSize, 24, seed: 99);
        var requests = Enumerable.Range(0, 4).Select(i => Request($"s{i}", Prompt(decoder.VocabSize, 2 + i, seed: 200 + i, prefix: system), new SamplingParameters(6, Temperature: 0))).ToList();
        var expected = await Alone(source, requests);

        await using var pipeline = await PipelineGenerationTests.Start(source, 2);
        using var engines = PipelineEngines.Start(pipeline, decoder, Options(decoder.BytesPerPosition, 2 * 128));
        var actual = new List<long>[requests.Count];
        for (var i = 0; i < requests.Count; i++)
        {
            // One at a time: every engine is idle, and the router's prefix affinity picks the one that cached the prefix.
            actual[i] = await Collect(engines.Router, requests[i]);
        }

        AssertSame(expected, actual);
        var hits = engines.Engines.Sum(e => e.Load.PrefixHitTokens);
        Assert.True(hits >= 3 * 24, $"prefix cache hits: {hits} tokens");
    }

    [Fact]
    public async Task A_stage_lost_mid_generation_costs_a_recompute_and_never_a_wrong_token()
    {
        var source = LlamaSource.Resolve(PipelineGenerationTests.Folder("llama3-tiny"));
        var decoder = PipelineDecoder.Of(source.Config, ScalarType.Float32);
        var system = Prompt(decoder.VocabSize, 24, seed: 7);
        var first = Request("first", Prompt(decoder.VocabSize, 3, seed: 1, prefix: system), new SamplingParameters(4, Temperature: 0));
        var wave = Enumerable.Range(0, 6).Select(i => Request($"w{i}", Prompt(decoder.VocabSize, 2 + i, seed: 10 + i, prefix: i % 2 == 0 ? system : null), new SamplingParameters(5 + i, Temperature: 0))).ToList();
        var after = Enumerable.Range(0, 2).Select(i => Request($"a{i}", Prompt(decoder.VocabSize, 4 + i, seed: 30 + i, prefix: system), new SamplingParameters(5, Temperature: 0))).ToList();
        var expected = await Alone(source, [first, .. wave, .. after]);

        await using var pipeline = await ReplanningPipeline.StartAsync(source);
        using var engines = PipelineEngines.Start(pipeline, decoder, Options(decoder.BytesPerPosition, 2 * 128));
        var actual = new List<List<long>> { await Collect(engines.Router, first) };

        // The stage is lost on the wave's first step: the engine that sent it, and the other one at its next step, recompute.
        pipeline.LoseAtNextStep();
        actual.AddRange(await Task.WhenAll(wave.Select(r => Collect(engines.Router, r))));
        Assert.Equal(1, pipeline.Replans);
        foreach (var request in after)
        {
            actual.Add(await Collect(engines.Router, request));
        }

        AssertSame(expected, actual);
        Assert.True(engines.Engines.Sum(e => e.Load.Preemptions) > 0, "nothing was recomputed: the test no longer covers a lost stage");
    }

    /// <summary>
    /// A local two-stage pipeline that, when told, loses its stages on the next step and plans again (a fresh pipeline,
    /// empty caches), failing that step with <see cref="StageStateLostException"/>, as a cluster pipeline does; a step of
    /// the old pipeline that fails after that (it was stopped under the step) fails the same way.
    /// </summary>
    private sealed class ReplanningPipeline : IPipeline
    {
        private readonly LlamaSource _source;
        private readonly SemaphoreSlim _gate = new(1, 1);
        private PipelineRuntime _current;
        private int _generation;
        private int _lose;

        private ReplanningPipeline(LlamaSource source, PipelineRuntime current) => (_source, _current) = (source, current);

        public int Replans => _generation;

        public IReadOnlyList<Akka.Actor.IActorRef> Stages => _current.Stages;

        public IReadOnlyList<string> StageDescriptions => _current.StageDescriptions;

        public static async Task<ReplanningPipeline> StartAsync(LlamaSource source) => new(source, await PipelineGenerationTests.Start(source, 2));

        public void LoseAtNextStep() => Interlocked.Exchange(ref _lose, 1);

        public Task<PipelineCompleted> RunAsync(object input, int? numChunks = null, bool gatherOutput = false, CancellationToken cancellation = default) =>
            _current.RunAsync(input, numChunks, gatherOutput, cancellation);

        public async Task<PipelineStepCompleted> StepAsync(object payload, CancellationToken cancellation = default)
        {
            if (Interlocked.Exchange(ref _lose, 0) == 1)
            {
                await _gate.WaitAsync(cancellation);
                try
                {
                    var old = _current;
                    Volatile.Write(ref _current, await PipelineGenerationTests.Start(_source, 2));
                    Interlocked.Increment(ref _generation);
                    await old.DisposeAsync();
                }
                finally
                {
                    _gate.Release();
                }

                throw new StageStateLostException("stage 1 was lost; the pipeline was planned again");
            }

            // The generation first: a step that sees the new one runs on the new pipeline.
            var generation = Volatile.Read(ref _generation);
            var runtime = Volatile.Read(ref _current);
            try
            {
                return await runtime.StepAsync(payload, cancellation);
            }
            catch (Exception e) when (Volatile.Read(ref _generation) != generation)
            {
                throw new StageStateLostException("a stage was lost while the step ran; the pipeline was planned again", e);
            }
        }

        public Task<PipelineMetrics> MetricsAsync(CancellationToken cancellation = default) => _current.MetricsAsync(cancellation);

        public async ValueTask DisposeAsync()
        {
            await _current.DisposeAsync();
            _gate.Dispose();
        }
    }
}
