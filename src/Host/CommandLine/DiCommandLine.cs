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
}
