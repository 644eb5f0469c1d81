using System.Globalization;
using Akka.Configuration;
using DistributedInference.Models;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// What <c>di config</c> asks and <c>di launch</c> reads: the <c>distributed-inference.launch</c> section of a HOCON
/// file (<c>num-processes</c>, <c>devices</c>, <c>main-process-ip</c>, <c>main-process-port</c>, 0 for a free port,
/// <c>num-machines</c>, <c>machine-rank</c>, <c>dtype</c>: what a program's models should use, spelled as <c>--dtype</c>
/// (fp32, bf16, fp16; float32, bfloat16 and float16 are read as those) and handed to it as <c>DI_DTYPE</c>).
/// <c>di launch</c> reads <see cref="DefaultPath"/> unless <c>--config-file</c> names another file; its flags override
/// the file.
/// </summary>
public sealed record LaunchConfig(int NumProcesses, string Devices, string MainProcessIp, int MainProcessPort, int NumMachines = 1, int MachineRank = 0, string Dtype = "fp32")
{
    /// <summary>The built-in values, used where neither a file nor a flag gives one.</summary>
    public static LaunchConfig Defaults { get; } = new(2, "cpu", "127.0.0.1", 0);

    /// <summary>The user's launch configuration: <c>$XDG_CONFIG_HOME/di/launch.conf</c> (<c>~/.config/di/launch.conf</c>).</summary>
    public static string DefaultPath => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify), "di", "launch.conf");

    /// <summary>The file's launch section over <see cref="Defaults"/>; <see cref="Defaults"/> when <paramref name="path"/> is null or, for the default path, missing.</summary>
    /// <exception cref="InvalidInputException">The file cannot be read or parsed, or a value is invalid.</exception>
    public static LaunchConfig Read(string? path)
    {
        if (path is null)
        {
            return Defaults;
        }

        Config config;
        try
        {
            config = ConfigurationFactory.ParseString(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ConfigurationException)
        {
            throw new InvalidInputException($"config file {path}: {e.Message.Split('\n', 2)[0].Trim()}", e);
        }

        var d = Defaults;
        var section = "distributed-inference.launch.";
        var read = new LaunchConfig(
            config.GetInt(section + "num-processes", d.NumProcesses),
            config.GetString(section + "devices", d.Devices),
            config.GetString(section + "main-process-ip", d.MainProcessIp),
            config.GetInt(section + "main-process-port", d.MainProcessPort),
            config.GetInt(section + "num-machines", d.NumMachines),
            config.GetInt(section + "machine-rank", d.MachineRank),
            DtypeName(config.GetString(section + "dtype", d.Dtype), $"config file {path}: dtype"));
        return read.NumProcesses > 0 && read.MainProcessPort is >= 0 and <= 65535 && read.NumMachines > 0 && read.MachineRank >= 0 && read.MachineRank < read.NumMachines
            ? read
            : throw new InvalidInputException($"config file {path}: num-processes and num-machines must be positive, machine-rank 0 to num-machines - 1, main-process-port 0-65535");
    }

    /// <summary>A dtype as every command spells it (fp32, bf16, fp16), from that spelling or transformers' (float32, ...).</summary>
    /// <exception cref="InvalidInputException">Not a dtype (one line, after <paramref name="what"/>).</exception>
    public static string DtypeName(string text, string what = "dtype")
    {
        try
        {
            return Models.Runtime.Precisions.Name(Models.Runtime.Precisions.Parse(text));
        }
        catch (InvalidInputException)
        {
            throw new InvalidInputException($"{what}: give fp32, bf16 or fp16, got '{text}'");
        }
    }

    /// <summary>This configuration as the HOCON text <see cref="Read"/> reads.</summary>
    public string ToHocon() => string.Create(CultureInfo.InvariantCulture, $$"""
        # di launch defaults, written by di config. Flags of di launch override these values.
        distributed-inference.launch {
          num-processes = {{NumProcesses}}
          devices = "{{Devices}}"
          main-process-ip = "{{MainProcessIp}}"
          # 0: a free port for each launch
          main-process-port = {{MainProcessPort}}
          # machines that each run di launch (num-processes is the total over all of them), and this one's index
          num-machines = {{NumMachines}}
          machine-rank = {{MachineRank}}
          # the dtype a program's models should use (DI_DTYPE), as --dtype: fp32, bf16 or fp16
          dtype = "{{Dtype}}"
        }

        """);
}
