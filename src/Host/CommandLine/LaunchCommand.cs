using System.CommandLine;
using DistributedInference.Host.Cluster;

namespace DistributedInference.Host.CommandLine;

/// <summary><c>di launch --num-processes N [--devices-per-process D] [--config-file F] -- infer ...</c>.</summary>
public static class LaunchCommand
{
    public static Command Create()
    {
        var processes = new Option<int>("--num-processes") { Description = "node processes to start on 127.0.0.1", DefaultValueFactory = _ => 2 };
        var devices = new Option<string?>("--devices-per-process") { Description = "each node's devices (default: the job's --devices)" };
        var configFile = new Option<string?>("--config-file") { Description = "HOCON file every node reads over the defaults" };
        var job = new Argument<string[]>("job") { Description = "after --: infer and its options", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("launch", "Start N local node processes as a cluster, run an infer job across every device, stop them.")
        {
            processes, devices, configFile, job,
        };
        command.SetAction((result, cancellation) => UserErrors.Run(
            async () =>
            {
                var options = new LaunchOptions(result.GetValue(processes), result.GetValue(devices), result.GetValue(configFile), result.GetValue(job) ?? [], result.GetValue<bool>(DiCommandLine.VerboseOption));
                await LaunchedInference.Run(options, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error, cancellation);
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }
}
