using System.CommandLine;
using DistributedInference.Models.Runtime;
using TorchSharp;

namespace DistributedInference.Host.CommandLine;

/// <summary><c>di env</c>: what this machine offers (libtorch in use, CUDA devices), for bug reports and set-up checks.</summary>
public static class EnvCommand
{
    public static Command Create()
    {
        var libtorch = new Option<string?>("--libtorch") { Description = "folder holding libtorch, as for infer" };
        var command = new Command("env", "Show the libtorch in use and the devices it sees.") { libtorch };
        command.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var output = result.InvocationConfiguration.Output;
                LibTorch.Initialize(result.GetValue(libtorch));
                await output.WriteLineAsync($"di: {Version}");
                await output.WriteLineAsync($"TorchSharp: {typeof(torch).Assembly.GetName().Version}");
                await output.WriteLineAsync($"libtorch: {LibTorch.Folder ?? "shipped with di (CPU)"}");
                foreach (var library in LibTorch.MappedLibraries())
                {
                    await output.WriteLineAsync($"  loaded {library}");
                }

                var cuda = torch.cuda.is_available();
                await output.WriteLineAsync($"CUDA available: {cuda}");
                await output.WriteLineAsync($"devices: cpu{(cuda ? string.Concat(Enumerable.Range(0, torch.cuda.device_count()).Select(i => $", cuda:{i}")) : string.Empty)}");
                await output.WriteLineAsync($"CPU threads: {torch.get_num_threads()}");
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    /// <summary>This build's version as <c>di --version</c> prints it (the informational version: 1.0.0+commit).</summary>
    public static string Version =>
        typeof(EnvCommand).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion
        ?? typeof(EnvCommand).Assembly.GetName().Version?.ToString() ?? "unknown";
}
