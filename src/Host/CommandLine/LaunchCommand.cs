using System.CommandLine;
using DistributedInference.Host.Cluster;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di launch --num-processes N [--devices-per-process D] [--config-file F] -- infer ...</c>, or
/// <c>di launch --num-processes N [--devices D] [--main-process-ip IP] [--main-process-port P] [--num-machines M --machine-rank R] -- PROGRAM ARGS...</c>
/// (see <see cref="ProgramLaunch"/>).
/// </summary>
public static class LaunchCommand
{
    public static Command Create()
    {
        var processes = new Option<int>("--num-processes") { Description = "processes to start on 127.0.0.1 (default: the launch config file's, else 2)", DefaultValueFactory = _ => 2 };
        var devices = new Option<string?>("--devices-per-process") { Description = "each node's devices (default: the job's --devices)" };
        var configFile = new Option<string?>("--config-file") { Description = "HOCON file: its distributed-inference.launch section instead of the one di config wrote; with infer, every node also reads it over the defaults" };
        var programDevices = new Option<string?>("--devices") { Description = "a program's devices, dealt to its processes round-robin (default cpu)" };
        var mainIp = new Option<string>("--main-process-ip") { Description = "where process 0 of a program meets the others (MASTER_ADDR)", DefaultValueFactory = _ => "127.0.0.1" };
        var mainPort = new Option<int?>("--main-process-port") { Description = "the port process 0 of a program listens on (MASTER_PORT; default a free one)" };
        var mainOnly = new Option<bool>("--main-process-output-only") { Description = "show only process 0's output" };
        var machines = new Option<int>("--num-machines") { Description = "machines that each run di launch for a program (--num-processes is the total over all of them)", DefaultValueFactory = _ => 1 };
        var machineRank = new Option<int>("--machine-rank") { Description = "this machine's index, 0 to --num-machines - 1 (machine 0 hosts process 0)", DefaultValueFactory = _ => 0 };
        var job = new Argument<string[]>("job") { Description = "after --: infer and its options, or any program and its arguments", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("launch", "Start N local node processes as a cluster and run an infer job across every device, or run a program N times as one process group.")
        {
            processes, devices, configFile, programDevices, mainIp, mainPort, mainOnly, machines, machineRank, job,
        };
        command.SetAction(async (result, outer) =>
        {
            // Ctrl-C / SIGTERM: the job is cancelled and the nodes stop; when that takes longer than the grace, they are killed.
            using var signals = new TerminationSignals(outer, LocalCluster.KillAll);
            var cancellation = signals.Token;
            var exit = await UserErrors.Run(
            async () =>
            {
                // The config file (--config-file, else the user's default launch config when it exists), then the flags given.
                var file = result.GetValue(configFile) ?? (File.Exists(LaunchConfig.DefaultPath) ? LaunchConfig.DefaultPath : null);
                var saved = LaunchConfig.Read(file);
                var numProcesses = result.GetResult(processes) is not { Implicit: false } ? saved.NumProcesses : result.GetValue(processes);
                var program = result.GetValue(job) ?? [];
                if (program.Length > 0 && program[0] != "infer")
                {
                    var launch = new ProgramLaunchOptions(
                        numProcesses,
                        result.GetValue(programDevices) ?? saved.Devices,
                        result.GetResult(mainIp) is not { Implicit: false } ? saved.MainProcessIp : result.GetValue(mainIp)!,
                        result.GetValue(mainPort) ?? (saved.MainProcessPort == 0 ? null : saved.MainProcessPort),
                        program,
                        result.GetValue(mainOnly),
                        result.GetResult(machines) is not { Implicit: false } ? saved.NumMachines : result.GetValue(machines),
                        result.GetResult(machineRank) is not { Implicit: false } ? saved.MachineRank : result.GetValue(machineRank),
                        saved.Dtype);
                    return await ProgramLaunch.Run(launch, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error, cancellation);
                }

                var options = new LaunchOptions(numProcesses, result.GetValue(devices), result.GetValue(configFile), result.GetValue(job) ?? [], result.GetValue<bool>(DiCommandLine.VerboseOption));
                await LaunchedInference.Run(options, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error, cancellation);
                return 0;
            },
            result.InvocationConfiguration.Error);
            signals.ExitIfSignalled();
            return exit;
        });
        return command;
    }
}
