using System.CommandLine;
using DistributedInference.Actors.Kernel.Settings;

namespace DistributedInference.Host.CommandLine;

/// <summary>The <c>di</c> command: one subcommand per way of running a job.</summary>
public static class DiCommandLine
{
    public static RootCommand Create()
    {
        var root = new RootCommand("DistributedInference: actor-based distributed inference for .NET (GPT-2, Llama, Mistral, Qwen and BERT embedders on TorchSharp).");
        root.Options.Add(new Option<bool>(VerboseOption) { Description = "also print Akka's own log lines (warnings, cluster events) on stderr", Recursive = true });
        root.Options.Add(new Option<string?>(LogFileOption) { Description = "append Akka's own log lines to this file instead", HelpName = "FILE", Recursive = true });
        root.Subcommands.Add(InferCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(ChatCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(BatchCommand.Create());
        root.Subcommands.Add(EnvCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(NodeCommand.Create());
        root.Subcommands.Add(StatusCommand.Create());
        root.Subcommands.Add(LaunchCommand.Create());
        root.Subcommands.Add(ConfigCommand.Create());
        root.Subcommands.Add(SecretCommands.CreateSecret());
        root.Subcommands.Add(SecretCommands.CreateCertificate());
        root.Subcommands.Add(CheckpointCommand.Create());
        return root;
    }

    /// <summary>
    /// Parses and runs a <c>di</c> command line. A command line the parser rejects (an unknown option, a value of the
    /// wrong type) is input the user can fix: one line on stderr and exit code 2, as for every other input error.
    /// </summary>
    public static async Task<int> InvokeAsync(IReadOnlyList<string> args, InvocationConfiguration configuration)
    {
        var parsed = Create().Parse(args);
        if (parsed.Errors.Count > 0)
        {
            await configuration.Error.WriteLineAsync($"di: error: {parsed.Errors[0].Message.TrimEnd('.')} ({SharedOptions.HelpCommand(parsed)} lists the options)");
            return UserErrors.BadInput;
        }

        TextWriter? log = null;
        if (parsed.GetValue<string?>(LogFileOption) is { } path)
        {
            try
            {
                log = TextWriter.Synchronized(new StreamWriter(path, append: true) { AutoFlush = true });
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await configuration.Error.WriteLineAsync($"di: error: {LogFileOption} {path}: {e.Message}");
                return UserErrors.BadInput;
            }
        }

        try
        {
            StandardErrorLogger.Output = log ?? (parsed.GetValue<bool>(VerboseOption) ? null : TextWriter.Null);
            return await parsed.InvokeAsync(configuration);
        }
        finally
        {
            if (log is not null)
            {
                StandardErrorLogger.Output = TextWriter.Null;
                await log.DisposeAsync();
            }
        }
    }

    /// <summary><c>--verbose</c>, on every command: Akka's own log lines on stderr (by default di prints only its own lines).</summary>
    public const string VerboseOption = "--verbose";

    /// <summary><c>--log-file F</c>, on every command: Akka's own log lines appended to a file.</summary>
    public const string LogFileOption = "--log-file";
}
