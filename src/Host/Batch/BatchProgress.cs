using System.Diagnostics;
using System.Globalization;

namespace DistributedInference.Host.Batch;

/// <summary>
/// A batch's progress on stderr: on a terminal one line redrawn twice a second, otherwise one line every
/// <c>--progress-every</c> seconds: requests done of those this run answers, requests/s, generated tokens/s, failed,
/// and the time left at the rate so far. Nothing when quiet.
/// </summary>
public sealed class BatchProgress : IAsyncDisposable
{
    private readonly TextWriter _stderr;
    private readonly BatchWriter _writer;
    private readonly long _total;
    private readonly bool _terminal;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _drawing;

    private BatchProgress(TextWriter stderr, BatchWriter writer, long total, bool terminal, TimeSpan every)
    {
        _stderr = stderr;
        _writer = writer;
        _total = total;
        _terminal = terminal;
        _drawing = DrawAsync(terminal ? TimeSpan.FromMilliseconds(500) : every);
    }

    /// <param name="total">Requests this run answers.</param>
    public static BatchProgress? Start(TextWriter stderr, BatchWriter writer, long total, BatchOptions options)
    {
        if (options.Quiet)
        {
            return null;
        }

        var terminal = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        return new BatchProgress(stderr, writer, total, terminal, options.ProgressEvery ?? TimeSpan.FromSeconds(10));
    }

    /// <summary>The progress line now.</summary>
    public string Line()
    {
        var done = _writer.Ok + _writer.Failed;
        var seconds = Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
        var rate = done / seconds;
        var left = rate > 0 ? TimeSpan.FromSeconds((_total - done) / rate) : (TimeSpan?)null;
        return string.Create(CultureInfo.InvariantCulture,
            $"di batch: {done:N0}/{_total:N0} ({100.0 * done / Math.Max(_total, 1):0.0}%), {rate:0.0} requests/s, {_writer.CompletionTokens / seconds:0.0} tokens/s, {_writer.Failed:N0} failed, ETA {(left is { } l ? Format(l) : "-")}");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _drawing;
        if (_terminal)
        {
            await _stderr.WriteAsync("\r\u001b[2K");
        }

        _stop.Dispose();
    }

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds:00}s" : $"{t.Seconds}s";

    private async Task DrawAsync(TimeSpan every)
    {
        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                await _stderr.WriteAsync(_terminal ? $"\r\u001b[2K{Line()}" : Line() + Environment.NewLine);
                await _stderr.FlushAsync();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
