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
        Receive<LogEvent>(e => Console.Error.WriteLine($"[{e.LogLevel().ToString().Replace("Level", string.Empty, StringComparison.Ordinal).ToUpperInvariant()}] {e.LogSource}: {e.Message}{(e.Cause is null ? string.Empty : $" ({e.Cause.GetType().Name}: {e.Cause.Message})")}"));
    }
}
