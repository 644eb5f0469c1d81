using Akka.Actor;
using Akka.Event;

namespace DistributedInference.Actors.Configuration;

/// <summary>
/// Akka's log on stderr, one line an event: stdout belongs to results (di writes JSON lines there).
/// Configured in hocon/ as the only logger.
/// </summary>
public sealed class StandardErrorLogger : ReceiveActor
{
    public StandardErrorLogger()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(e => (Output ?? Console.Error).WriteLine($"[{e.LogLevel().ToString().Replace("Level", string.Empty, StringComparison.Ordinal).ToUpperInvariant()}] {e.LogSource}: {e.Message}{(e.Cause is null ? string.Empty : $" ({e.Cause.GetType().Name}: {e.Cause.Message})")}"));
    }

    /// <summary>
    /// Where every actor system of this process logs: null (the default) for stderr; a host app may send the lines to a
    /// file or to <see cref="TextWriter.Null"/> (di does, unless <c>--verbose</c> or <c>--log-file</c>). The writer
    /// must be thread-safe (<see cref="TextWriter.Synchronized"/>).
    /// </summary>
    public static TextWriter? Output { get; set; }
}
