using System.Diagnostics;
using System.Text;

namespace DistributedInference.Host.Tests.Serving;

/// <summary>A real <c>di serve</c> process on 127.0.0.1 (a free port), started and stopped as a user would.</summary>
public sealed class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServeProcess(Process process)
    {
        _process = process;
    }

    public Uri Address => _listening.Task.Result;

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Starts <c>di serve ARGS --port 0</c> and waits (at most 3 minutes) for its listening line.</summary>
    public static async Task<ServeProcess> StartAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "di.dll"));
        start.ArgumentList.Add("serve");
        foreach (var arg in args.Concat(["--host", "127.0.0.1", "--port", "0"]))
        {
            start.ArgumentList.Add(arg);
        }

        var serve = new ServeProcess(Process.Start(start)!);
        serve._process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                serve._listening.TrySetException(new InvalidOperationException($"di serve ended before listening: {serve.Stderr}"));
                return;
            }

            lock (serve._stderr)
            {
                serve._stderr.AppendLine(e.Data);
            }

            const string prefix = "di serve: listening on ";
            if (e.Data.StartsWith(prefix, StringComparison.Ordinal))
            {
                serve._listening.TrySetResult(new Uri(e.Data[prefix.Length..]));
            }
        };
        serve._process.BeginErrorReadLine();
        serve._process.BeginOutputReadLine();
        await serve._listening.Task.WaitAsync(TimeSpan.FromMinutes(3));
        return serve;
    }

    /// <summary>Sends SIGTERM and waits for the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await _process.WaitForExitAsync().WaitAsync(timeout);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }
}
