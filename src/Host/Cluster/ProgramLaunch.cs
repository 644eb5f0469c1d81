using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Models;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// <c>di launch [options] -- PROGRAM ARGS...</c> where PROGRAM is not <c>infer</c>: starts PROGRAM
/// <see cref="ProgramLaunchOptions.NumProcesses"/> / <see cref="ProgramLaunchOptions.NumMachines"/> times on this machine, each with an environment in torchrun's names
/// (<see cref="Rank"/>, <see cref="WorldSize"/>, <see cref="LocalRank"/>, <see cref="LocalWorldSize"/>,
/// <see cref="MasterAddr"/>, <see cref="MasterPort"/>) plus <see cref="DeviceVariable"/> (round-robin over the
/// devices) and the launch's cluster secret (<see cref="ClusterSecurity.SecretVariable"/>). Every line a process
/// writes is copied prefixed <c>[rank i]</c> (stdout to stdout, stderr to stderr). The first process that exits
/// non-zero ends the launch: the others get SIGTERM, are killed after <see cref="StopGrace"/>, and the launch
/// exits with that process's code.
/// </summary>
public static class ProgramLaunch
{
    /// <summary>The process index in the whole group, 0 to WORLD_SIZE - 1.</summary>
    public const string Rank = Actors.Processes.ProcessEnvironment.Rank;

    /// <summary>How many processes the group has.</summary>
    public const string WorldSize = Actors.Processes.ProcessEnvironment.WorldSize;

    /// <summary>The process index on this machine.</summary>
    public const string LocalRank = Actors.Processes.ProcessEnvironment.LocalRank;

    /// <summary>How many processes of the group run on this machine.</summary>
    public const string LocalWorldSize = Actors.Processes.ProcessEnvironment.LocalWorldSize;

    /// <summary>The address of process 0, where the group meets.</summary>
    public const string MasterAddr = Actors.Processes.ProcessEnvironment.MasterAddr;

    /// <summary>The port process 0 listens on for the group.</summary>
    public const string MasterPort = Actors.Processes.ProcessEnvironment.MasterPort;

    /// <summary>The device this process uses (<c>cpu</c>, <c>cuda:1</c>, ...).</summary>
    public const string DeviceVariable = Actors.Processes.ProcessEnvironment.DeviceVariable;

    /// <summary>How long a process has after SIGTERM before it is killed.</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    /// <summary>Runs the launch and returns its exit code: 0 when every process exited 0, else the first failure's code.</summary>
    /// <exception cref="InvalidInputException">Bad options, or PROGRAM cannot be started.</exception>
    public static async Task<int> Run(ProgramLaunchOptions launch, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        if (launch.NumProcesses <= 0)
        {
            throw new InvalidInputException($"--num-processes must be positive, got {launch.NumProcesses}");
        }

        var devices = (launch.Devices ?? "cpu").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (devices.Length == 0)
        {
            throw new InvalidInputException("--devices: give at least one device, e.g. cpu or cuda:0,cuda:1");
        }

        foreach (var device in devices)
        {
            try
            {
                Models.Runtime.DeviceName.Parse(device);
            }
            catch (InvalidInputException e)
            {
                throw new InvalidInputException($"--devices: {e.Message}", e);
            }
        }

        if (launch.MainProcessPort is { } fixedPort && fixedPort is <= 0 or > 65535)
        {
            throw new InvalidInputException($"--main-process-port {fixedPort}: not a port (1-65535)");
        }

        if (launch.NumMachines <= 0 || launch.MachineRank < 0 || launch.MachineRank >= launch.NumMachines)
        {
            throw new InvalidInputException($"--machine-rank {launch.MachineRank}: must be in 0..{launch.NumMachines - 1} (--num-machines {launch.NumMachines})");
        }

        if (launch.NumProcesses % launch.NumMachines != 0)
        {
            throw new InvalidInputException($"--num-processes {launch.NumProcesses} is the total over all machines: it must be a multiple of --num-machines {launch.NumMachines}");
        }

        if (launch.NumMachines > 1 && launch.MainProcessPort is null)
        {
            throw new InvalidInputException("--num-machines > 1: give every machine the same --main-process-port (and --main-process-ip, machine 0's address)");
        }

        // One machine: a secret of this launch. Several: every machine's launcher must hand out the same one, the
        // user's DI_CLUSTER_SECRET (required off loopback).
        var secret = launch.NumMachines == 1 ? ClusterSecurity.NewSecret() : Environment.GetEnvironmentVariable(ClusterSecurity.SecretVariable)?.Trim();
        if (string.IsNullOrEmpty(secret))
        {
            if (!ClusterSecurity.IsLoopback(launch.MainProcessIp))
            {
                throw new InvalidInputException($"--num-machines {launch.NumMachines} off loopback: set the same {ClusterSecurity.SecretVariable} on every machine ({ClusterSecurity.HowToMakeASecret})");
            }

            // Several launchers on loopback without DI_CLUSTER_SECRET cannot agree on a new one: no secret, as for a
            // di node on loopback.
            secret = string.Empty;
        }

        var perMachine = launch.NumProcesses / launch.NumMachines;
        var port = launch.MainProcessPort ?? FreePort();
        var output = TextWriter.Synchronized(stdout);
        var errors = TextWriter.Synchronized(stderr);
        var processes = new List<Process>();
        var ranks = new List<int>();
        var pumps = new List<Task>();
        try
        {
            for (var local = 0; local < perMachine; local++)
            {
                var rank = (launch.MachineRank * perMachine) + local;
                var start = new ProcessStartInfo(launch.Command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var arg in launch.Command.Skip(1))
                {
                    start.ArgumentList.Add(arg);
                }

                start.Environment[Rank] = Text(rank);
                start.Environment[WorldSize] = Text(launch.NumProcesses);
                start.Environment[LocalRank] = Text(local);
                start.Environment[LocalWorldSize] = Text(perMachine);
                start.Environment[MasterAddr] = launch.MainProcessIp;
                start.Environment[MasterPort] = Text(port);
                start.Environment[DeviceVariable] = devices[local % devices.Length];
                start.Environment[Actors.Processes.ProcessEnvironment.DtypeVariable] = launch.Dtype;
                start.Environment[ClusterSecurity.SecretVariable] = secret;
                Process process;
                try
                {
                    process = Process.Start(start) ?? throw new InvalidInputException($"could not start {launch.Command[0]}");
                }
                catch (Win32Exception e)
                {
                    throw new InvalidInputException($"cannot start {launch.Command[0]}: {e.Message}", e);
                }

                processes.Add(process);
                var shown = !launch.MainProcessOutputOnly || rank == 0;
                ranks.Add(rank);
                pumps.Add(Pump(process.StandardOutput, $"[rank {rank}] ", shown ? output : null));
                pumps.Add(Pump(process.StandardError, $"[rank {rank}] ", shown ? errors : null));
            }

            var exits = processes.Select((p, i) => WaitExit(p, ranks[i], cancellation)).ToList();
            var code = 0;
            while (exits.Count > 0)
            {
                var done = await Task.WhenAny(exits);
                exits.Remove(done);
                var (rank, exit) = await done;
                if (exit != 0)
                {
                    // Others may have failed in the meantime because this one went (a lost peer at a barrier): the
                    // first to exit is the cause.
                    (rank, exit) = FirstFailure(processes, ranks, rank, exit);
                    await errors.WriteLineAsync($"di launch: rank {rank} exited with code {exit}; stopping the others");
                    code = exit;
                    break;
                }
            }

            await StopAll(processes, errors);
            await Task.WhenAny(Task.WhenAll(pumps), Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None));
            return code;
        }
        catch
        {
            await StopAll(processes, errors);
            throw;
        }
        finally
        {
            processes.ForEach(p => p.Dispose());
        }
    }

    private static async Task<(int Rank, int Exit)> WaitExit(Process process, int rank, CancellationToken cancellation)
    {
        await process.WaitForExitAsync(cancellation);
        return (rank, process.ExitCode);
    }

    private static async Task StopAll(IReadOnlyList<Process> processes, TextWriter errors)
    {
        var running = processes.Where(p => !p.HasExited).ToList();
        foreach (var process in running)
        {
            _ = Kill(process.Id, Sigterm);
        }

        await Task.WhenAll(running.Select(async process =>
        {
            using var timeout = new CancellationTokenSource(StopGrace);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                await errors.WriteLineAsync($"di launch: process {process.Id} did not stop within {StopGrace.TotalSeconds:F0} s of SIGTERM; killed");
                process.Kill(entireProcessTree: true);
            }
        }));
    }

    private static async Task Pump(StreamReader reader, string prefix, TextWriter? target)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            if (target is not null)
            {
                await target.WriteLineAsync(prefix + line);
            }
        }
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static (int Rank, int Exit) FirstFailure(List<Process> processes, List<int> ranks, int rank, int exit)
    {
        var first = processes[ranks.IndexOf(rank)].ExitTime;
        for (var i = 0; i < processes.Count; i++)
        {
            if (processes[i].HasExited && processes[i].ExitCode != 0 && processes[i].ExitTime < first)
            {
                (first, rank, exit) = (processes[i].ExitTime, ranks[i], processes[i].ExitCode);
            }
        }

        return (rank, exit);
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private const int Sigterm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}

/// <summary>
/// <c>di launch -- PROGRAM ARGS...</c>: how many processes in all (over every machine, as Accelerate counts them), the
/// devices dealt to each machine's processes round-robin (comma-separated), where process 0 meets the others, the
/// command line, whether only process 0's output is shown, and (Accelerate's <c>--num-machines</c>,
/// <c>--machine-rank</c>) how many machines run a launcher and which one this is: machine r starts the processes
/// r * (NumProcesses / NumMachines) onwards; machine 0 hosts process 0.
/// </summary>
public sealed record ProgramLaunchOptions(int NumProcesses, string? Devices, string MainProcessIp, int? MainProcessPort, IReadOnlyList<string> Command, bool MainProcessOutputOnly = false, int NumMachines = 1, int MachineRank = 0, string Dtype = "float32");
