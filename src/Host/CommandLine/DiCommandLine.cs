using System.CommandLine;

namespace DistributedInference.Host.CommandLine;

/// <summary>The <c>di</c> command: one subcommand per way of running a job.</summary>
public static class DiCommandLine
{
    public static RootCommand Create()
    {
        var root = new RootCommand("DistributedInference: actor-based distributed inference for .NET (GPT-2, Llama, Mistral, Qwen and BERT embedders on TorchSharp).");
        root.Subcommands.Add(InferCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(EnvCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(NodeCommand.Create());
        root.Subcommands.Add(LaunchCommand.Create());
        root.Subcommands.Add(ConfigCommand.Create());
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

        return await parsed.InvokeAsync(configuration);
    }
}
