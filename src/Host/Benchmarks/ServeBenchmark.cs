using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Host.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// <c>di bench serve</c>'s settings: <paramref name="Streams"/> requests at once of <paramref name="PromptTokens"/> random
/// ids and <paramref name="NewTokens"/> new tokens each (end-of-sequence ignored, as vLLM's <c>benchmark_serving</c>),
/// or the requests of <paramref name="RequestsFile"/> (JSONL: <c>prompt</c> as text or ids, <c>max_tokens</c>);
/// against <paramref name="Url"/> (a running <c>di serve</c>, streaming completions) or an in-process engine of
/// <paramref name="Model"/> on <paramref name="Device"/>.
/// </summary>
public sealed record ServeBenchOptions(
    string Model = "gpt2",
    Precision DType = Precision.Fp32,
    int Streams = 16,
    int PromptTokens = 32,
    int NewTokens = 64,
    string? RequestsFile = null,
    string? Url = null,
    string? ApiKey = null,
    string Device = "cpu",
    int Threads = 0,
    long Seed = 0,
    int MaxNumSeqs = 64,
    double KvCacheMebibytes = 1024);

/// <summary>
/// The continuous-batching load test: the requests all at once (a closed batch of concurrent streams), then the same
/// requests one at a time, in one run; for each, time to first token and inter-token latency (p50, p99), output tokens/s
/// and requests/s; the last line is the concurrent run's output tokens/s over the one-at-a-time run's, as <c>N.NNx</c>.
/// </summary>
public static class ServeBenchmark
{
    /// <returns>The speed-up (concurrent over one at a time output tokens/s).</returns>
    /// <exception cref="InvalidInputException">Bad options, an unreadable requests file, a server that refuses.</exception>
    public static async Task<double> Run(ServeBenchOptions options, string? libtorch, TextWriter output, CancellationToken cancellation = default)
    {
        if (options.Streams < 1 || options.PromptTokens < 1 || options.NewTokens < 1)
        {
            throw new InvalidInputException("--streams, --prompt-tokens and --new-tokens must be at least 1");
        }

        ITarget target = options.Url is { } url ? new HttpTarget(url, options.ApiKey) : Local(options, libtorch);
        try
        {
            var requests = options.RequestsFile is { } file ? ReadRequests(file) : Synthetic(options, target.VocabSize);
            await output.WriteLineAsync($"bench serve: {requests.Count} request(s), {target.Describe()}; load average {LoadAverage()}");
            await Once(target, requests[0] with { MaxTokens = Math.Min(4, requests[0].MaxTokens) }, cancellation);

            var concurrent = await Phase(target, requests, concurrently: true, cancellation);
            var sequential = await Phase(target, requests, concurrently: false, cancellation);
            await output.WriteLineAsync("| run | requests | output tokens | wall s | output tok/s | req/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |");
            await output.WriteLineAsync("|---|---|---|---|---|---|---|---|---|---|");
            await output.WriteLineAsync(concurrent.Row($"{requests.Count} concurrent"));
            await output.WriteLineAsync(sequential.Row("one at a time"));
            var speedup = concurrent.TokensPerSecond / sequential.TokensPerSecond;
            await output.WriteLineAsync($"load average after: {LoadAverage()}");
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"continuous batching speed-up (output tokens/s, {requests.Count} requests, concurrent over one at a time): {speedup:0.00}x"));
            return speedup;
        }
        finally
        {
            (target as IDisposable)?.Dispose();
        }
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static LocalTarget Local(ServeBenchOptions options, string? libtorch)
    {
        LibTorch.Initialize(libtorch);
        if (options.Threads > 0)
        {
            TorchSharp.torch.set_num_threads(options.Threads);
        }

        var model = ServedModel.Load(options.Model, null, null, options.Seed);
        if (!model.Generates)
        {
            throw new InvalidInputException($"{model.Name} does not generate: bench serve needs a decoder");
        }

        var device = DeviceName.Parse(options.Device).ToTorch();
        var module = ServingReplica.CreateDecoder(model.Source, device, options.DType.ToScalarType());
        var batching = new ContinuousBatchingOptions(
            KvCacheBytes: (long)(options.KvCacheMebibytes * 1024 * 1024),
            Scheduler: new IterationSchedulerOptions(options.MaxNumSeqs, Math.Max(512, options.MaxNumSeqs), 256, MaxWaiting: Math.Max(256, options.Streams)));
        var engine = new ContinuousBatchingEngine((Models.Generation.ICausalLanguageModel)module, device, batching);
        return new LocalTarget(model, module, engine, $"{model.Name} {options.DType.Name()} on {options.Device}, in-process engine ({engine.Load.TotalBlocks} KV blocks)");
    }

    private static List<BenchRequest> Synthetic(ServeBenchOptions options, int vocabulary)
    {
        var random = new Random((int)options.Seed);
        return Enumerable.Range(0, options.Streams)
            .Select(_ => new BenchRequest(null, Enumerable.Range(0, options.PromptTokens).Select(_ => (long)random.Next(vocabulary)).ToList(), options.NewTokens))
            .ToList();
    }

    private static List<BenchRequest> ReadRequests(string file)
    {
        if (!File.Exists(file))
        {
            throw new InvalidInputException($"--requests {file}: no such file");
        }

        var requests = new List<BenchRequest>();
        var number = 0;
        foreach (var line in File.ReadLines(file))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                var node = JsonNode.Parse(line)!.AsObject();
                var maxTokens = (int?)node["max_tokens"] ?? 16;
                requests.Add(node["prompt"] switch
                {
                    JsonArray ids => new BenchRequest(null, ids.Select(id => (long)id!).ToList(), maxTokens),
                    JsonValue text when text.TryGetValue<string>(out var prompt) => new BenchRequest(prompt, null, maxTokens),
                    _ => throw new InvalidInputException("prompt must be text or a list of token ids"),
                });
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or InvalidInputException)
            {
                throw new InvalidInputException($"--requests {file} line {number}: {e.Message}");
            }
        }

        return requests.Count > 0 ? requests : throw new InvalidInputException($"--requests {file}: no requests");
    }

    private static async Task<PhaseResult> Phase(ITarget target, IReadOnlyList<BenchRequest> requests, bool concurrently, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var timings = new List<RequestTiming>();
        if (concurrently)
        {
            timings.AddRange(await Task.WhenAll(requests.Select(r => Once(target, r, cancellation))));
        }
        else
        {
            foreach (var request in requests)
            {
                timings.Add(await Once(target, request, cancellation));
            }
        }

        return new PhaseResult(timings, clock.Elapsed);
    }

    private static async Task<RequestTiming> Once(ITarget target, BenchRequest request, CancellationToken cancellation)
    {
        var started = Stopwatch.GetTimestamp();
        var arrivals = new List<TimeSpan>();
        await foreach (var tokens in target.Stream(request, cancellation))
        {
            var at = Stopwatch.GetElapsedTime(started);
            for (var i = 0; i < tokens; i++)
            {
                arrivals.Add(at);
            }
        }

        return new RequestTiming(arrivals);
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        values.Sort();
        return values[Math.Clamp((int)Math.Ceiling(p * values.Count) - 1, 0, values.Count - 1)];
    }

    private sealed record BenchRequest(string? Text, IReadOnlyList<long>? Ids, int MaxTokens);

    private sealed record RequestTiming(IReadOnlyList<TimeSpan> Arrivals);

    private sealed record PhaseResult(IReadOnlyList<RequestTiming> Requests, TimeSpan Wall)
    {
        public long Tokens => Requests.Sum(r => r.Arrivals.Count);

        public double TokensPerSecond => Tokens / Wall.TotalSeconds;

        public string Row(string name)
        {
            var ttft = Requests.Where(r => r.Arrivals.Count > 0).Select(r => r.Arrivals[0].TotalMilliseconds).ToList();
            var itl = Requests.SelectMany(r => r.Arrivals.Zip(r.Arrivals.Skip(1), (a, b) => (b - a).TotalMilliseconds)).ToList();
            return string.Create(CultureInfo.InvariantCulture, $"| {name} | {Requests.Count} | {Tokens} | {Wall.TotalSeconds:0.00} | {TokensPerSecond:0.0} | {Requests.Count / Wall.TotalSeconds:0.00} | {Percentile(ttft, 0.5):0} | {Percentile(ttft, 0.99):0} | {Percentile(itl, 0.5):0.0} | {Percentile(itl, 0.99):0.0} |");
        }
    }

    private interface ITarget
    {
        int VocabSize { get; }

        string Describe();

        /// <summary>Tokens of the request as they arrive (a count per arrival).</summary>
        IAsyncEnumerable<int> Stream(BenchRequest request, CancellationToken cancellation);
    }

    private sealed class LocalTarget(ServedModel model, IDisposable module, ContinuousBatchingEngine engine, string description) : ITarget, IDisposable
    {
        private int _next;

        public int VocabSize => ((Models.Generation.ICausalLanguageModel)module).VocabSize;

        public string Describe() => description;

        public async IAsyncEnumerable<int> Stream(BenchRequest request, [EnumeratorCancellation] CancellationToken cancellation)
        {
            var ids = request.Ids ?? (model.Tokenizer ?? throw new InvalidInputException($"{model.Name} has no tokenizer: give prompts as token ids")).Encode(request.Text!).Select(id => (long)id).ToList();
            var generation = new GenerationRequest($"bench-{Interlocked.Increment(ref _next)}", ids, new SamplingParameters(request.MaxTokens, Temperature: 0), []);
            await foreach (var update in engine.GenerateAsync(generation, cancellation))
            {
                yield return update.Tokens.Count;
            }
        }

        public void Dispose()
        {
            engine.Dispose();
            module.Dispose();
        }
    }

    private sealed class HttpTarget : ITarget, IDisposable
    {
        private readonly HttpClient _http;
        private readonly string _url;

        public HttpTarget(string url, string? apiKey)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                throw new InvalidInputException($"--url {url}: give the server's base address, e.g. http://127.0.0.1:8000");
            }

            _url = url.TrimEnd('/');
            _http = new HttpClient { BaseAddress = uri, Timeout = Timeout.InfiniteTimeSpan };
            if (apiKey is not null)
            {
                _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
            }
        }

        // Random ids need a vocabulary the server's model has: ids below 500 are in every family's, the fixtures' included.
        public int VocabSize => 500;

        public string Describe() => $"against {_url}";

        public async IAsyncEnumerable<int> Stream(BenchRequest request, [EnumeratorCancellation] CancellationToken cancellation)
        {
            var body = new JsonObject
            {
                ["prompt"] = request.Ids is { } ids ? new JsonArray(ids.Select(id => (JsonNode)id).ToArray()) : request.Text,
                ["max_tokens"] = request.MaxTokens,
                ["temperature"] = 0,
                ["ignore_eos"] = true,
                ["stream"] = true,
                ["stream_options"] = new JsonObject { ["include_usage"] = true },
            };
            using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
            using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellation);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidInputException($"{_url}/v1/completions answered {(int)response.StatusCode}: {(await response.Content.ReadAsStringAsync(cancellation)).ReplaceLineEndings(" ")}");
            }

            // An event per token, but a token that ends inside a UTF-8 character has no text yet: the usage settles the count.
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellation));
            var counted = 0;
            while (await reader.ReadLineAsync(cancellation) is { } line)
            {
                if (!line.StartsWith("data: {", StringComparison.Ordinal))
                {
                    continue;
                }

                var chunk = JsonNode.Parse(line[6..]);
                if (chunk?["usage"]?["completion_tokens"] is { } usage && (int)usage > counted)
                {
                    yield return (int)usage - counted;
                    counted = (int)usage;
                }
                else if (chunk?["choices"] is JsonArray { Count: > 0 } choices && !string.IsNullOrEmpty(choices[0]?["text"]?.GetValue<string>()))
                {
                    counted++;
                    yield return 1;
                }
            }
        }

        public void Dispose() => _http.Dispose();
    }
}
