using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using DistributedInference.Host.Cluster;
using DistributedInference.Host.Serving;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>
/// <c>di serve --join</c>: a cluster node started with <c>--serve requests</c> runs the requests (through the job
/// coordinators, as <c>di infer --join</c> runs its jobs) and greedy completions equal those of local devices.
/// </summary>
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

            Assert.Contains("1 node(s), 1 device(s)", backend.Describe());
            Assert.Equal(local, await Complete(server.Address, prompt));
        }
        finally
        {
            await node.Terminate();
        }
    }
}
