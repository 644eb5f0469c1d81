using System.Text.Json.Nodes;
using System.Threading.Channels;
using DistributedInference.Host.Serving;

namespace DistributedInference.Host.Batch;

/// <summary>
/// The one writer of a batch's output: answers arrive from any job in any order and are appended by one task, as they
/// come or, <c>--ordered</c>, in input order (held until every earlier request's answer is written: a reorder buffer of
/// at most the requests in flight). Each written line frees one of the run's in-flight places (<paramref name="written"/>).
/// Counts what it wrote for progress and the summary.
/// </summary>
public sealed class BatchWriter
{
    private readonly Channel<Answer> _answers = Channel.CreateUnbounded<Answer>(new UnboundedChannelOptions { SingleReader = true });
    private readonly BatchOutput _output;
    private readonly bool _ordered;
    private readonly Action _written;
    private readonly Action<Exception> _broken;
    private readonly Task _writing;
    private long _ok;
    private long _failed;
    private long _promptTokens;
    private long _completionTokens;

    /// <param name="broken">Called once when the output cannot be written (a full disk): the run stops.</param>
    /// <summary>
    /// A test seam: with <c>DI_TEST_BATCH_HOLD_AFTER_LINES=N</c>, the writer stops for good after appending N lines in this
    /// run (the crash tests kill the process there, at a moment that does not depend on the machine's speed).
    /// </summary>
    private static readonly long HoldAfter = long.TryParse(Environment.GetEnvironmentVariable("DI_TEST_BATCH_HOLD_AFTER_LINES"), out var lines) && lines > 0 ? lines : -1;

    private long _appended;

    public BatchWriter(BatchOutput output, bool ordered, Action written, Action<Exception> broken)
    {
        _output = output;
        _ordered = ordered;
        _written = written;
        _broken = broken;
        _writing = Task.Run(WriteAllAsync);
    }

    public long Ok => Interlocked.Read(ref _ok);

    public long Failed => Interlocked.Read(ref _failed);

    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    /// <summary>The answer of a finished request.</summary>
    public void Write(BatchPending request) => _answers.Writer.TryWrite(request.Error is { } error
        ? new Answer(request.Sequence, ErrorLine(request.Line.CustomId, error), null)
        : new Answer(request.Sequence, ResponseLine(request.Line.CustomId!, request.Body!), request.Tokens));

    /// <summary>The error line of a request that could not be run.</summary>
    public void Write(long sequence, string? customId, BatchError error) => _answers.Writer.TryWrite(new Answer(sequence, ErrorLine(customId, error), null));

    /// <summary>Writes what is left (in order: up to the first request not answered) and syncs the file.</summary>
    public async Task CompleteAsync()
    {
        _answers.Writer.TryComplete();
        await _writing;
        _output.Sync();
    }

    /// <summary>OpenAI's batch output line of a successful request.</summary>
    public static string ResponseLine(string customId, JsonObject body) => new JsonObject
    {
        ["id"] = $"batch_req_{Guid.NewGuid():N}",
        ["custom_id"] = customId,
        ["response"] = new JsonObject
        {
            ["status_code"] = 200,
            ["request_id"] = body["id"]?.GetValue<string>() ?? $"req_{Guid.NewGuid():N}",
            ["body"] = body,
        },
        ["error"] = null,
    }.ToJsonString(OpenAIJson.Options);

    /// <summary>OpenAI's batch output line of a request that has no response.</summary>
    public static string ErrorLine(string? customId, BatchError error)
    {
        var json = new JsonObject { ["code"] = error.Code, ["message"] = error.Message };
        if (error.Param is not null)
        {
            json["param"] = error.Param;
        }

        if (error.Line is not null)
        {
            json["line"] = error.Line;
        }

        return new JsonObject
        {
            ["id"] = $"batch_req_{Guid.NewGuid():N}",
            ["custom_id"] = customId,
            ["response"] = null,
            ["error"] = json,
        }.ToJsonString(OpenAIJson.Options);
    }

    private async Task WriteAllAsync()
    {
        try
        {
            await AppendAllAsync();
        }
        catch (Exception e)
        {
            _broken(e);
            throw;
        }
    }

    private async Task AppendAllAsync()
    {
        var held = new Dictionary<long, Answer>();
        long next = 0;
        await foreach (var answer in _answers.Reader.ReadAllAsync())
        {
            if (!_ordered)
            {
                Append(answer);
                continue;
            }

            held[answer.Sequence] = answer;
            while (held.Remove(next, out var due))
            {
                Append(due);
                next++;
            }
        }
    }

    private void Append(Answer answer)
    {
        _output.Append(answer.Json);
        if (++_appended == HoldAfter)
        {
            // The kill tests' seam: the process stands still with exactly this many new lines written, to be killed there.
            Thread.Sleep(Timeout.Infinite);
        }

        if (answer.Tokens is { } tokens)
        {
            Interlocked.Increment(ref _ok);
            Interlocked.Add(ref _promptTokens, tokens.Prompt);
            Interlocked.Add(ref _completionTokens, tokens.Completion);
            BatchMetrics.Completed(tokens.Prompt, tokens.Completion);
        }
        else
        {
            Interlocked.Increment(ref _failed);
            BatchMetrics.Failed();
        }

        _written();
    }

    private sealed record Answer(long Sequence, string Json, (int Prompt, int Completion)? Tokens);
}
