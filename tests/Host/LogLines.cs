using System.Text;

namespace DistributedInference.Host.Tests;

/// <summary>
/// A writer that keeps the lines written to it (a <see cref="Cluster.LocalCluster"/>'s log with the nodes' stderr) and
/// completes a task when a line that matches is written, so a test awaits a line instead of polling the text.
/// Thread-safe.
/// </summary>
public sealed class LogLines : TextWriter
{
    private readonly object _gate = new();
    private readonly List<string> _lines = [];
    private readonly StringBuilder _partial = new();
    private readonly List<Waiter> _waiters = [];

    public override Encoding Encoding => Encoding.UTF8;

    /// <summary>The whole lines written so far.</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_gate)
            {
                return [.. _lines];
            }
        }
    }

    public override void Write(char value) => Append([value]);

    public override void Write(char[] buffer, int index, int count) => Append(buffer.AsSpan(index, count));

    public override void Write(string? value) => Append(value);

    /// <summary>
    /// Completes with the <paramref name="count"/>-th line that matches (lines written before the call count too); fails
    /// with <see cref="TimeoutException"/> after <paramref name="timeout"/>, naming <paramref name="what"/>.
    /// </summary>
    public async Task<string> WhenWritten(Func<string, bool> match, TimeSpan timeout, string what, int count = 1)
    {
        Waiter waiter;
        lock (_gate)
        {
            waiter = new Waiter(match, count);
            foreach (var line in _lines)
            {
                waiter.Saw(line);
            }

            if (!waiter.Done.Task.IsCompleted)
            {
                _waiters.Add(waiter);
            }
        }

        try
        {
            return await waiter.Done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{what}: not written within {timeout.TotalSeconds:F0} s");
        }
        finally
        {
            lock (_gate)
            {
                _waiters.Remove(waiter);
            }
        }
    }

    public override string ToString() => string.Join('\n', Lines);

    private void Append(ReadOnlySpan<char> text)
    {
        lock (_gate)
        {
            foreach (var c in text)
            {
                if (c != '\n')
                {
                    _partial.Append(c);
                    continue;
                }

                var line = _partial.ToString().TrimEnd('\r');
                _partial.Clear();
                _lines.Add(line);
                foreach (var waiter in _waiters)
                {
                    waiter.Saw(line);
                }
            }
        }
    }

    private sealed class Waiter(Func<string, bool> match, int count)
    {
        private int _seen;

        public TaskCompletionSource<string> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Saw(string line)
        {
            if (match(line) && ++_seen == count)
            {
                Done.TrySetResult(line);
            }
        }
    }
}
