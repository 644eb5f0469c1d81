using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using DistributedInference.Actors.Serving;
using DistributedInference.Host.Cluster;
using DistributedInference.Host.Serving;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

using DistributedInference.Tests.Shared;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>
/// <c>di serve --join</c>: nodes started with <c>--serve requests</c> run the requests on their continuous-batching
/// engines; greedy completions equal those of local devices, and a stream whose node is killed goes on on another node
/// with the text it would have had.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ClusterServeTests
{
    private static string Model => Path.Combine(DiRunner.Fixtures, "llama3-tiny", "model");

    private static async Task<List<long>> Complete(Uri server, string prompt)
    {
        using var http = new HttpClient { BaseAddress = server };
        var body = $$"""{"prompt": {{prompt}}, "max_tokens": 10, "temperature": 0, "return_token_ids": true}""";
        using var response = await http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!["choices"]![0]!["token_ids"]!.AsArray().Select(x => (long)x!).ToList();
    }

    [Fact]
    public async Task Requests_run_on_a_node_serving_requests_and_equal_local_devices()
    {
        LibTorch.Initialize();
        const string prompt = "[637, 5, 17, 42, 99]";
        List<long> local;
        var localOptions = new ServeOptions(Model, Port: 0);
        var model = ServedModel.Load(Model, null, null, 0);
        await using (var backend = await ServingBackend.StartAsync(model, localOptions, CancellationToken.None))
        await using (var server = await OpenAIServer.StartAsync(new ServingContext(model, backend, localOptions)))
        {
            local = await Complete(server.Address, prompt);
        }

        var node = ClusterNode.Start(new NodeOptions("127.0.0.1", 0, [], ["device", "control"], "cpu", null, Model, InferenceTask.Generate, Precision.Fp32, 16, 0, null, Serve: [NodeOptions.ServeRequests]));
        try
        {
            await ClusterJoin.WhenUpAsync(node, [], null);
            var port = Akka.Cluster.Cluster.Get(node).SelfAddress.Port!.Value;
            var options = new ServeOptions(Model, Port: 0, Join: [$"127.0.0.1:{port}"]);
            await using var backend = await ServingBackend.StartAsync(model, options, CancellationToken.None);
            await using var server = await OpenAIServer.StartAsync(new ServingContext(model, backend, options));
            await backend.WhenServing.WaitAsync(TimeSpan.FromMinutes(2));

            Assert.Contains("1 node(s) generating", backend.Describe());
            Assert.Equal(local, await Complete(server.Address, prompt));
        }
        finally
        {
            await node.Terminate();
        }
    }

    [Fact]
    public async Task Streams_whose_node_is_killed_mid_stream_go_on_elsewhere_with_the_same_text()
    {
        const int streams = 32;
        const int holdAfter = 4;
        var log = new LogLines();
        await using var nodes = await LocalCluster.StartAsync(
            3, _ => ["--devices", "cpu", "--model", Model, "--task", "generate", "--serve", "requests"], log, CancellationToken.None, forwardStderr: true,
            environment: new Dictionary<string, string> { [GenerationHost.HoldAfterTokensVariable] = holdAfter.ToString() });
        var model = ServedModel.Load(Model, null, null, 0);
        var options = new ServeOptions(Model, Port: 0, Join: [nodes.Seed]);
        await using var backend = await ServingBackend.StartAsync(model, options, CancellationToken.None);
        await using var server = await OpenAIServer.StartAsync(new ServingContext(model, backend, options));
        await backend.WhenServing.WaitAsync(TimeSpan.FromMinutes(2));

        // All three nodes' engines found (each starts when first asked), so the node killed has streams of its own.
        var found = System.Diagnostics.Stopwatch.StartNew();
        while (!backend.Describe().StartsWith("3 node(s)", StringComparison.Ordinal) && found.Elapsed < TimeSpan.FromMinutes(2))
        {
            await Task.Delay(100);
        }

        Assert.StartsWith("3 node(s)", backend.Describe());
        using var resumed = new CounterSum("di.serve.sequences.resumed");

        // Every stream gets its first tokens, then every node holds it (the seam) until a member leaves: the kill is
        // mid-stream for all 32, whatever this machine's speed.
        var midway = Enumerable.Range(0, streams).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var killed = Enumerable.Range(0, streams).Select(i => Stream(server.Address, i, holdAfter, midway[i])).ToArray();
        await Task.WhenAll(midway.Select(m => m.Task)).WaitAsync(TimeSpan.FromMinutes(5));
        nodes.Processes[1].Kill();
        var texts = await Task.WhenAll(killed).WaitAsync(TimeSpan.FromMinutes(5));

        // The same requests again, on the two nodes left: what a run without the kill gives.
        var again = await Task.WhenAll(Enumerable.Range(0, streams).Select(i => Stream(server.Address, i, 0, new TaskCompletionSource()))).WaitAsync(TimeSpan.FromMinutes(5));
        Assert.Equal(again, texts);
        Assert.All(texts, t => Assert.EndsWith("|length", t));
        Assert.True(resumed.Total > 0, $"no stream went on on another node:\n{log}");
        using var http = new HttpClient { BaseAddress = server.Address };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode);
    }

    [Fact]
    public async Task A_server_its_cluster_downs_says_so_and_exits_instead_of_serving_nothing()
    {
        var log = new LogLines();
        await using var nodes = await LocalCluster.StartAsync(1, _ => ["--devices", "cpu", "--model", Model, "--task", "generate", "--serve", "requests"], log, CancellationToken.None, forwardStderr: true);
        using var serve = DiRunner.StartProcess(["serve", "--join", nodes.Seed, "--model", Model, "--port", "0"]);
        using var reaper = DiRunner.KillOnDispose(serve);
        _ = serve.StandardOutput.ReadToEndAsync();
        var lines = new List<string>();
        while (await serve.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2)) is { } line)
        {
            lines.Add(line);
            if (line.StartsWith("di serve: listening on", StringComparison.Ordinal))
            {
                break;
            }
        }

        // Alone without the oldest member, the server's side of the cluster downs itself (keep-oldest, down-if-alone).
        nodes.Processes[0].Kill();
        var rest = await serve.StandardError.ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(2));
        await serve.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        Assert.True(serve.ExitCode == 1, $"exit {serve.ExitCode}:\n{string.Join('\n', lines)}\n{rest}");
        Assert.Contains("di: error: this server is no longer a member of its cluster", rest);
    }

    // Stream i (greedy when even, seeded sampling when odd): its text and finish reason; midway completes after `after` chunks.
    private static async Task<string> Stream(Uri server, int i, int after, TaskCompletionSource midway)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromMinutes(10) };
        var sampling = i % 2 == 0 ? "\"temperature\": 0" : $"\"temperature\": 0.9, \"seed\": {1000 + i}";
        var body = $$"""{"prompt": [637, {{5 + i}}, 17, 42, 99], "max_tokens": 24, "stream": true, {{sampling}}}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var (text, finish, chunks) = (new StringBuilder(), (string?)null, 0);
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]")
            {
                continue;
            }

            var choice = JsonNode.Parse(line[6..])!["choices"]![0]!;
            text.Append((string?)choice["text"]);
            finish = (string?)choice["finish_reason"] ?? finish;
            if (++chunks >= after)
            {
                midway.TrySetResult();
            }
        }

        midway.TrySetResult();
        return $"{text}|{finish}";
    }
}
