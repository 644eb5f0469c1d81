using System.Runtime.InteropServices;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// SIGINT (Ctrl-C) and SIGTERM while a command runs a job. The first signal cancels <see cref="Token"/> (the job stops:
/// a cluster client cancels it on the cluster too) and gives the command <see cref="Grace"/> to wind down; after that,
/// or at a second signal, <c>beforeExit</c> runs (a launch kills its nodes) and the process exits with 130 (SIGINT) or
/// 143 (SIGTERM), whatever still runs. A command that ends because of the signal returns <see cref="ExitCode"/>.
/// </summary>
public sealed class TerminationSignals : IDisposable
{
    /// <summary>How long a signalled command has to end on its own before the process exits.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(3.5);

    private readonly CancellationTokenSource _cancel;
    private readonly CancellationTokenSource _disposed = new();
    private readonly PosixSignalRegistration[] _registrations;
    private readonly Action? _beforeExit;
    private int _exitCode;

    /// <param name="outer">The command's own token (cancelled too when it is).</param>
    /// <param name="beforeExit">Runs just before the process exits when the grace is over (not when the command ends in time).</param>
    public TerminationSignals(CancellationToken outer, Action? beforeExit = null)
    {
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _beforeExit = beforeExit;
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle)];
    }

    /// <summary>Cancelled at the first signal (or when the outer token is).</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>130 after SIGINT, 143 after SIGTERM; null while no signal came.</summary>
    public int? ExitCode => Volatile.Read(ref _exitCode) is var code and not 0 ? code : null;

    /// <summary>
    /// After a signal: the command has ended, so the process exits now with <see cref="ExitCode"/> (the actor system's
    /// shutdown hook would leave a cluster that may be gone, for seconds). Without a signal: returns.
    /// </summary>
    public void ExitIfSignalled()
    {
        if (ExitCode is { } code)
        {
            Exit(code, beforeExit: false);
        }
    }

    public void Dispose()
    {
        _disposed.Cancel();
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _cancel.Dispose();
    }

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        var code = context.Signal == PosixSignal.SIGINT ? 130 : 143;
        if (Interlocked.CompareExchange(ref _exitCode, code, 0) != 0)
        {
            Exit(Volatile.Read(ref _exitCode));
            return;
        }

        // The grace is kept by a thread of its own, started before anything is cancelled: neither a cancellation callback
        // that blocks nor a starved thread pool (a loaded machine) can keep the process past it.
        var grace = new Thread(() =>
        {
            if (!_disposed.Token.WaitHandle.WaitOne(Grace))
            {
                Exit(code);
            }
        })
        { IsBackground = true, Name = "termination-grace" };
        grace.Start();

        // Off the signal thread: cancelling runs the job's callbacks.
        _ = Task.Run(async () =>
        {
            try
            {
                await _cancel.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // The command ended before the signal's cancellation ran.
            }
        });
    }

    /// <summary>
    /// Ends the process at once with <paramref name="code"/> after flushing stdout and stderr: no shutdown hooks and no
    /// finalizers, so neither the actor system's leaving (seconds) nor libtorch's teardown under a thread still in a
    /// kernel (a crash) comes first.
    /// </summary>
    public static void ExitAtOnce(int code)
    {
        try
        {
            Console.Out.Flush();
            Console.Error.Flush();
            if (!OperatingSystem.IsWindows())
            {
                ExitNow(code);
            }
        }
        finally
        {
            Environment.Exit(code);
        }
    }

    private void Exit(int code, bool beforeExit = true)
    {
        try
        {
            if (beforeExit)
            {
                _beforeExit?.Invoke();
            }
        }
        finally
        {
            ExitAtOnce(code);
        }
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void ExitNow(int status);
}
