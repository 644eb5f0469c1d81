using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using DistributedInference.Actors.Kernel.Telemetry;
using DistributedInference.Host.Serving;
using DistributedInference.Models.Runtime;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>
/// What an operator scrapes from <c>di serve</c>: <c>/metrics</c> counts every request once in the GenAI histograms,
/// with the token usage the responses reported; <c>/health/live</c> and <c>/health/ready</c> answer without the API key.
/// In a host app the same instruments reach OpenTelemetry's in-memory exporter.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ServingMetricsTests
{
    private const string ApiKey = "sk-metrics";

    private static string Model(string fixture) => Path.Combine(DiRunner.Fixtures, fixture, "model");

    private static string QwenTemplate => Path.Combine(DiRunner.Fixtures, "chat-templates", "Qwen-Qwen2.5-7B-Instruct", "template.jinja");

    [Fact]
    public async Task Metrics_count_every_request_once_with_the_usage_the_responses_reported()
    {
        await using var serve = await ServeProcess.StartAsync("--model", Model("llama3-tiny"), "--api-key", ApiKey);
        using var http = new HttpClient { BaseAddress = serve.Address, Timeout = TimeSpan.FromMinutes(3) };

        // Probes and scrapers carry no key.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/live")).StatusCode);
        var ready = await http.GetAsync("/health/ready");
        Assert.True(ready.StatusCode == HttpStatusCode.OK, await ready.Content.ReadAsStringAsync());

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
        long prompt = 0, completion = 0;
        for (var i = 0; i < 20; i++)
        {
            var stream = i % 4 == 3;
            var body = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["prompt"] = new string('a', 1 + i) + " b",
                ["max_tokens"] = 2 + (i % 5),
                ["temperature"] = 0,
                ["stream"] = stream,
                ["stream_options"] = stream ? new Dictionary<string, object> { ["include_usage"] = true } : null!,
            }.Where(kv => kv.Value is not null).ToDictionary());
            using var response = await http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, text);
            var usage = stream
                ? JsonDocument.Parse(text.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal) && l.Contains("\"usage\"", StringComparison.Ordinal)).Last()[6..]).RootElement.GetProperty("usage")
                : JsonDocument.Parse(text).RootElement.GetProperty("usage");
            prompt += usage.GetProperty("prompt_tokens").GetInt64();
            completion += usage.GetProperty("completion_tokens").GetInt64();
        }

        // One refused request (wrong model) is no generation request: it counts nowhere.
        using (var refused = await http.PostAsync("/v1/completions", new StringContent("""{"model":"other","prompt":"x"}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        }

        http.DefaultRequestHeaders.Authorization = null;
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Equal(20, Sum(metrics, "gen_ai_server_time_to_first_token_seconds_count"));
        Assert.Equal(20, Sum(metrics, "gen_ai_server_request_duration_seconds_count"));
        Assert.Equal(prompt, Sum(metrics, "gen_ai_client_token_usage_sum", "gen_ai_token_type=\"input\""));
        Assert.Equal(completion, Sum(metrics, "gen_ai_client_token_usage_sum", "gen_ai_token_type=\"output\""));
        Assert.InRange(Sum(metrics, "di_serve_requests_running"), 0, 1); // the last request may not have left its handler yet
        // The continuous-batching engine's own: nothing waits, every prompt but its last token was looked up in the prefix cache.
        Assert.Equal(0, Sum(metrics, "di_serve_sequences_waiting"));
        Assert.True(Sum(metrics, "di_kv_cache_blocks_free") > 0, metrics);
        Assert.Equal(prompt - 20, Sum(metrics, "di_kv_cache_prefix_queried_total"));
        Assert.True(Sum(metrics, "di_serve_engine_busy_time_seconds_total") > 0, metrics);
    }

    [Fact]
    public async Task A_host_apps_chat_client_records_to_an_opentelemetry_exporter()
    {
        LibTorch.Initialize();
        var name = $"metrics-{Guid.NewGuid():N}";
        var exported = new List<Metric>();
        using var meters = Sdk.CreateMeterProviderBuilder().AddMeter(Instrumentation.Name).AddInMemoryExporter(exported).Build();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInferenceServing(new ServeOptions(Model("qwen2-tiny"), ServedModelName: name, ChatTemplate: QwenTemplate));
        using var host = builder.Build();
        await host.StartAsync();
        var chat = host.Services.GetRequiredService<IChatClient>();
        long input = 0, output = 0;
        for (var i = 0; i < 3; i++)
        {
            var response = await chat.GetResponseAsync([new AIChatMessage(ChatRole.User, $"question {i}")], new ChatOptions { Temperature = 0, MaxOutputTokens = 3 + i });
            input += response.Usage!.InputTokenCount!.Value;
            output += response.Usage!.OutputTokenCount!.Value;
        }

        await host.StopAsync();
        meters.ForceFlush();

        // Only this test's model: other tests of this process record too.
        IEnumerable<MetricPoint> Points(string metric) => exported.Where(m => m.Name == metric).SelectMany(m =>
        {
            var points = new List<MetricPoint>();
            foreach (ref readonly var point in m.GetMetricPoints())
            {
                points.Add(point);
            }

            return points;
        }).Where(p => Tag(p, "gen_ai.request.model") == name);
        Assert.Equal(3, Points("gen_ai.server.time_to_first_token").Sum(p => p.GetHistogramCount()));
        Assert.Equal(input, Points("gen_ai.client.token.usage").Where(p => Tag(p, "gen_ai.token.type") == "input").Sum(p => p.GetHistogramSum()));
        Assert.Equal(output, Points("gen_ai.client.token.usage").Where(p => Tag(p, "gen_ai.token.type") == "output").Sum(p => p.GetHistogramSum()));
        Assert.All(Points("gen_ai.server.request.duration"), p => Assert.Equal("chat", Tag(p, "gen_ai.operation.name")));
    }

    private static string? Tag(MetricPoint point, string key)
    {
        foreach (var tag in point.Tags)
        {
            if (tag.Key == key)
            {
                return tag.Value?.ToString();
            }
        }

        return null;
    }

    // The sum of a Prometheus text-format metric's samples (over all label sets, or those with every given label).
    private static double Sum(string exposition, string metric, params string[] labels)
    {
        var samples = exposition.Split('\n')
            .Where(line => line.StartsWith(metric + "{", StringComparison.Ordinal) || line.StartsWith(metric + " ", StringComparison.Ordinal))
            .Where(line => labels.All(label => line.Contains(label, StringComparison.Ordinal)))
            .Select(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))
            .ToList();
        Assert.True(samples.Count > 0, $"no {metric} {string.Join(",", labels)} in /metrics:\n{exposition}");
        return samples.Sum();
    }
}
