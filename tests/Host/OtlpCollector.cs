using System.Net;
using System.Text;

namespace DistributedInference.Host.Tests;

/// <summary>A span as an OTLP exporter sent it: ids as lower-case hex, the resource's <c>service.instance.id</c>, its string and integer attributes.</summary>
public sealed record CollectedSpan(string TraceId, string SpanId, string ParentSpanId, string Name, string Instance, IReadOnlyDictionary<string, string> Attributes);

/// <summary>
/// A test's OTLP/HTTP receiver on 127.0.0.1: accepts <c>POST /v1/traces</c> (protobuf <c>ExportTraceServiceRequest</c>,
/// read field by field as opentelemetry-proto's trace.proto numbers them) and <c>/v1/metrics</c> (answered, not read).
/// Point processes at it with <see cref="Environment"/>.
/// </summary>
public sealed class OtlpCollector : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<CollectedSpan> _spans = [];
    private readonly Task _loop;

    public OtlpCollector()
    {
        var port = DiRunner.FreePort();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string Endpoint { get; }

    /// <summary>The variables that send a process's spans here soon after they end.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Endpoint,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        ["OTEL_METRIC_EXPORT_INTERVAL"] = "1000",
    };

    public IReadOnlyList<CollectedSpan> Spans
    {
        get
        {
            lock (_spans)
            {
                return [.. _spans];
            }
        }
    }

    /// <summary>Completes when <paramref name="done"/> holds for the spans received (checked as each export arrives), or throws after <paramref name="bound"/>.</summary>
    public async Task<IReadOnlyList<CollectedSpan>> WhenAsync(Func<IReadOnlyList<CollectedSpan>, bool> done, TimeSpan bound, string what)
    {
        var deadline = Task.Delay(bound);
        while (true)
        {
            Task arrived;
            lock (_spans)
            {
                if (done(_spans))
                {
                    return [.. _spans];
                }

                arrived = _arrived.Task;
            }

            if (await Task.WhenAny(arrived, deadline) == deadline)
            {
                throw new TimeoutException($"{what}: not within {bound}; {Spans.Count} spans received:\n{string.Join("\n", Spans.Select(s => $"{s.Instance} {s.Name} {s.TraceId}/{s.SpanId} <- {s.ParentSpanId}"))}");
            }
        }
    }

    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            if (context.Request.Url?.AbsolutePath == "/v1/traces")
            {
                var spans = Parse(body.ToArray());
                TaskCompletionSource arrived;
                lock (_spans)
                {
                    _spans.AddRange(spans);
                    arrived = _arrived;
                    _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                arrived.TrySetResult();
            }

            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(10));
    }

    // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
    private static List<CollectedSpan> Parse(byte[] request)
    {
        var spans = new List<CollectedSpan>();
        foreach (var (_, resourceSpans) in Fields(request).Where(f => f.Number == 1))
        {
            var fields = Fields(resourceSpans).ToList();
            var resource = fields.Where(f => f.Number == 1).Select(f => Attributes(f.Value)).FirstOrDefault() ?? new Dictionary<string, string>();
            var instance = resource.GetValueOrDefault("service.instance.id", string.Empty);
            foreach (var (_, scopeSpans) in fields.Where(f => f.Number == 2))
            {
                foreach (var (_, span) in Fields(scopeSpans).Where(f => f.Number == 2))
                {
                    var parts = Fields(span).ToList();
                    string Hex(int number) => Convert.ToHexStringLower(parts.FirstOrDefault(p => p.Number == number).Value ?? []);
                    var name = Encoding.UTF8.GetString(parts.FirstOrDefault(p => p.Number == 5).Value ?? []);
                    spans.Add(new CollectedSpan(Hex(1), Hex(2), Hex(4), name, instance, Attributes(span, 9)));
                }
            }
        }

        return spans;
    }

    // KeyValue { string key = 1; AnyValue value = 2; } AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3; }
    private static Dictionary<string, string> Attributes(byte[] message, int field = 1)
    {
        var attributes = new Dictionary<string, string>();
        foreach (var (_, keyValue) in Fields(message).Where(f => f.Number == field))
        {
            var parts = Fields(keyValue).ToList();
            var key = Encoding.UTF8.GetString(parts.FirstOrDefault(p => p.Number == 1).Value ?? []);
            var value = parts.FirstOrDefault(p => p.Number == 2).Value ?? [];
            foreach (var (number, content) in Fields(value))
            {
                attributes[key] = number == 1 ? Encoding.UTF8.GetString(content) : number is 2 or 3 ? BitConverter.ToInt64(content.Concat(new byte[8]).Take(8).ToArray()).ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty;
            }
        }

        return attributes;
    }

    // The fields of a protobuf message: length-delimited ones as their bytes, varints as their value (8 bytes, little-endian), fixed ones as their bytes.
    private static IEnumerable<(int Number, byte[] Value)> Fields(byte[] message)
    {
        var position = 0;
        ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = message[position++];
                value |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }
        }

        while (position < message.Length)
        {
            var key = Varint();
            var number = (int)(key >> 3);
            switch (key & 7)
            {
                case 0:
                    yield return (number, BitConverter.GetBytes(Varint()));
                    break;
                case 1:
                    yield return (number, message[position..(position += 8)]);
                    break;
                case 2:
                    var length = (int)Varint();
                    yield return (number, message[position..(position += length)]);
                    break;
                case 5:
                    yield return (number, message[position..(position += 4)]);
                    break;
                default:
                    throw new InvalidDataException($"protobuf wire type {key & 7} at byte {position}");
            }
        }
    }
}
