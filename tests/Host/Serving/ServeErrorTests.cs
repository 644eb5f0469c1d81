using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using DistributedInference.Host.Cluster;
using DistributedInference.Host.Inference;
using DistributedInference.Host.Serving;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>
/// Every kind of bad request gets its status and OpenAI's error object (<c>error.message</c>, <c>type</c>,
/// <c>param</c>, <c>code</c>), with plain HTTP (no OpenAI client), and the server stays up and answers the next good
/// request. The server runs in this process (so a device can be held busy for the 429 case).
/// </summary>
public sealed class ServeErrorTests
{
    private const string Key = "secret-key";

    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    private static async Task<(HttpStatusCode Status, JsonObject Body, HttpResponseMessage Response)> Post(HttpClient http, string path, string body, string? key = Key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key is not null)
        {
            request.Headers.Authorization = new("Bearer", key);
        }

        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text)!.AsObject(), response);
    }

    private static void AssertError(HttpStatusCode expected, (HttpStatusCode Status, JsonObject Body, HttpResponseMessage Response) answer, string? param = null, string? messagePart = null)
    {
        Assert.Equal(expected, answer.Status);
        var error = answer.Body["error"]!.AsObject();
        Assert.False(string.IsNullOrWhiteSpace((string?)error["message"]));
        Assert.False(string.IsNullOrWhiteSpace((string?)error["type"]));
        Assert.True(error.ContainsKey("param") && error.ContainsKey("code"));
        if (param is not null)
        {
            Assert.Equal(param, (string?)error["param"]);
        }

        if (messagePart is not null)
        {
            Assert.Contains(messagePart, (string?)error["message"]);
        }
    }

    [Fact]
    public async Task Twelve_kinds_of_bad_request_get_their_status_and_the_server_stays_up()
    {
        LibTorch.Initialize();
        var gate = new GatedReplicas();
        var gemma = Path.Combine(DiRunner.Fixtures, "chat-templates", "google-gemma-2-2b-it", "template.jinja");
        var options = new ServeOptions(Model("llama3-tiny"), Port: 0, ApiKey: Key, ChatTemplate: gemma, MaxConcurrentRequests: 1, MaxRequestBodyBytes: 8192, ContinuousBatching: false);
        var model = ServedModel.Load(options.Model, "tiny", options.ChatTemplate, 0);
        await using var backend = await StartGated(model, options, gate);
        await using var server = await OpenAIServer.StartAsync(new ServingContext(model, backend, options));
        using var http = new HttpClient { BaseAddress = server.Address };
        const string good = """{"model": "tiny", "prompt": [637, 5, 6], "max_tokens": 3, "temperature": 0}""";

        // 1. not JSON; 2. an unsupported parameter (by name); 3. an OpenAI parameter at a value this server does not implement.
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/completions", "{\"prompt\": [1, 2"));
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/completions", """{"prompt": [5], "frobnicate": 1}"""), "frobnicate", "frobnicate");
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/completions", """{"prompt": "\ud800", "max_tokens": 2}"""));
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/completions", """{"prompt": [5], "presence_penalty": 0.5}"""), "presence_penalty");

        // 4. a value out of range; 5. a token id outside the vocabulary; 6. no prompt.
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/completions", """{"prompt": [5], "temperature": -1}"""), "temperature");
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/completions", """{"prompt": [5, 640]}"""), "prompt", "640");
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/completions", """{"max_tokens": 5}"""), "prompt");

        // 7. a prompt longer than the context (413); 8. prompt and budget over the context (400).
        var longPrompt = "{\"prompt\": [" + string.Join(',', Enumerable.Repeat(5, 300)) + "]}";
        AssertError(HttpStatusCode.RequestEntityTooLarge, await Post(http, "/v1/completions", longPrompt), "prompt", "256");
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/completions", """{"prompt": [5, 6], "max_tokens": 255}"""), "max_tokens", "256");

        // 9. a body over the limit (413); 10. no or a wrong API key (401).
        var huge = "{\"prompt\": \"" + new string('a', 20000) + "\"}";
        AssertError(HttpStatusCode.RequestEntityTooLarge, await Post(http, "/v1/completions", huge));
        AssertError(HttpStatusCode.Unauthorized, await Post(http, "/v1/completions", good, key: null));
        AssertError(HttpStatusCode.Unauthorized, await Post(http, "/v1/completions", good, key: "wrong"));

        // 11. an unknown model, an unknown route (404).
        AssertError(HttpStatusCode.NotFound, await Post(http, "/v1/completions", """{"model": "gpt-4", "prompt": [5]}"""), "model");
        AssertError(HttpStatusCode.NotFound, await Post(http, "/v1/responses", good));

        // 12. the chat template refuses the messages (its raise_exception message), and a model that does not embed.
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/chat/completions", """{"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]}"""), "messages", "System role not supported");
        AssertError(HttpStatusCode.BadRequest, await Post(http, "/v1/embeddings", """{"input": "x"}"""), "model");

        // 13. too many requests at once: 429 with Retry-After while the one allowed request holds the device.
        var held = Post(http, "/v1/completions", good);
        await gate.Entered.Task.WaitAsync(TimeSpan.FromMinutes(2));
        var busy = await Post(http, "/v1/completions", good);
        AssertError(HttpStatusCode.TooManyRequests, busy);
        Assert.True(busy.Response.Headers.RetryAfter is not null);
        gate.Release();
        Assert.Equal(HttpStatusCode.OK, (await held).Status);

        // Still up: health, and a good request.
        var health = await http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var ok = await Post(http, "/v1/completions", good);
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.InRange((int)ok.Body["usage"]!["completion_tokens"]!, 1, 3);
    }

    [Fact]
    public async Task No_device_serving_the_model_is_503_and_health_says_so()
    {
        LibTorch.Initialize();
        var control = ClusterNode.Start(new NodeOptions("127.0.0.1", 0, [], ["control"], "cpu", null, Model("llama3-tiny"), InferenceTask.Generate, Precision.Fp32, 16, 0, null));
        try
        {
            await ClusterJoin.WhenUpAsync(control, [], null);
            var port = Akka.Cluster.Cluster.Get(control).SelfAddress.Port!.Value;
            var options = new ServeOptions(Model("llama3-tiny"), Port: 0, Join: [$"127.0.0.1:{port}"]);
            var model = ServedModel.Load(options.Model, null, null, 0);
            await using var backend = await ServingBackend.StartAsync(model, options, CancellationToken.None);
            await using var server = await OpenAIServer.StartAsync(new ServingContext(model, backend, options));
            using var http = new HttpClient { BaseAddress = server.Address };

            var answer = await Post(http, "/v1/completions", """{"prompt": [637, 5], "max_tokens": 2}""", key: null);
            AssertError(HttpStatusCode.ServiceUnavailable, answer, messagePart: "no device");
            Assert.True(answer.Response.Headers.RetryAfter is not null);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/health")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/v1/models")).StatusCode);
        }
        finally
        {
            await control.Terminate();
        }
    }

    [Fact]
    public async Task With_a_certificate_the_server_speaks_https()
    {
        LibTorch.Initialize();
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=127.0.0.1", key, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        var file = Path.Combine(Path.GetTempPath(), $"di-serve-{Guid.NewGuid():N}.p12");
        File.WriteAllBytes(file, certificate.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12));
        try
        {
            var options = new ServeOptions(Model("llama3-tiny"), Port: 0, HttpsCertificate: file);
            var model = ServedModel.Load(options.Model, null, null, 0);
            await using var backend = await ServingBackend.StartAsync(model, options, CancellationToken.None);
            await using var server = await OpenAIServer.StartAsync(new ServingContext(model, backend, options));
            Assert.Equal("https", server.Address.Scheme);
            using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert!.Thumbprint == certificate.Thumbprint };
            using var http = new HttpClient(handler) { BaseAddress = server.Address };
            var answer = await Post(http, "/v1/completions", """{"prompt": [637, 5], "max_tokens": 2, "temperature": 0}""", key: null);
            Assert.Equal(HttpStatusCode.OK, answer.Status);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static async Task<ServingBackend> StartGated(ServedModel model, ServeOptions options, GatedReplicas gate)
    {
        using (FaultInjection.Wrap(factory => device => gate.Wrap(factory(device))))
        {
            return await ServingBackend.StartAsync(model, options, CancellationToken.None);
        }
    }

    /// <summary>Replicas whose runs say they started, then wait until the test releases them.</summary>
    private sealed class GatedReplicas
    {
        private readonly ManualResetEventSlim _open = new(false);

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _open.Set();

        public IReplicaModel Wrap(IReplicaModel inner) => new Gated(inner, this);

        private sealed class Gated(IReplicaModel inner, GatedReplicas gate) : IReplicaModel
        {
            public string Description => inner.Description;

            public ReplicaSpec? Spec => inner.Spec;

            public object Run(object rows)
            {
                gate.Entered.TrySetResult();
                gate._open.Wait(TimeSpan.FromMinutes(2));
                return inner.Run(rows);
            }

            public void Dispose() => inner.Dispose();
        }
    }
}
