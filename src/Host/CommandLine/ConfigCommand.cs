using System.CommandLine;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Models;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di config [--config-file F]</c>: questions like <c>accelerate config</c> (answers on stdin, an empty answer takes
/// the default shown), written to the file <c>di launch</c> reads (<see cref="LaunchConfig.DefaultPath"/> by default);
/// <c>di config default [--config-file F]</c>: the commented default configuration, to edit and pass back with --config-file.
/// </summary>
public static class ConfigCommand
{
    public static Command Create()
    {
        var file = new Option<string?>("--config-file") { Description = "write here instead of stdout" };
        var defaults = new Command("default", "Write the default configuration (HOCON).") { file };
        defaults.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var text = DistributedInferenceConfig.DefaultText();
                if (result.GetValue(file) is { } path)
                {
                    var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
                    if (!Directory.Exists(folder))
                    {
                        throw new InvalidInputException($"--config-file {path}: folder {folder} does not exist");
                    }

                    await File.WriteAllTextAsync(path, text);
                }
                else
                {
                    await result.InvocationConfiguration.Output.WriteAsync(text);
                }

                return 0;
            },
            result.InvocationConfiguration.Error));
        var launchFile = new Option<string?>("--config-file") { Description = "write the answers here instead of the default launch config file" };
        var config = new Command("config", "Answer questions (on stdin) to write the default config file of di launch; or: config default.") { defaults, launchFile };
        config.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var path = result.GetValue(launchFile) ?? Cluster.LaunchConfig.DefaultPath;
                var answers = await Ask(Console.In, result.InvocationConfiguration.Output);
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                await File.WriteAllTextAsync(path, answers.ToHocon());
                await result.InvocationConfiguration.Output.WriteLineAsync($"di config: written to {path}");
                return 0;
            },
            result.InvocationConfiguration.Error));
        return config;
    }

    /// <summary>
    /// Asks the questions of <c>di config</c> on <paramref name="output"/> and reads the answers from <paramref name="input"/>.
    /// An answer that is not valid is said (one line) and its question asked again, so one typo loses no other answer;
    /// only when the input ends there is it an error. An empty answer, or the end of the input, takes the default shown.
    /// </summary>
    /// <exception cref="InvalidInputException">An answer is not valid and the input ends (one line naming the question).</exception>
    public static async Task<Cluster.LaunchConfig> Ask(TextReader input, TextWriter output)
    {
        var d = Cluster.LaunchConfig.Defaults;
        async Task<T> Question<T>(string text, string fallback, Func<string, T> parse)
        {
            string? wrong = null;
            while (true)
            {
                await output.WriteAsync($"{text} [{fallback}]: ");
                var line = await input.ReadLineAsync();
                if (line is null && wrong is not null)
                {
                    throw new InvalidInputException(wrong);
                }

                var answer = string.IsNullOrWhiteSpace(line) ? fallback : line.Trim();
                try
                {
                    return parse(answer);
                }
                catch (InvalidInputException e) when (line is not null)
                {
                    wrong = e.Message;
                    await output.WriteLineAsync($"  {e.Message}; try again");
                }
            }
        }

        static Func<string, int> Number(string what, int min, int max) => answer =>
            int.TryParse(answer, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                ? n
                : throw new InvalidInputException($"{what}: give a whole number from {min} to {max}, got '{answer}'");

        static string Text(string answer) => answer;

        var processes = await Question("How many processes?", "2", Number("processes", 1, 1024));
        var devices = await Question("Which devices, comma-separated, dealt to the processes round-robin (cpu, cuda:0,cuda:1, ...)?", d.Devices, Text);
        var ip = await Question("The main process's IP address?", d.MainProcessIp, Text);
        var port = await Question("The main process's port (0: a free one)?", "0", Number("port", 0, 65535));
        var machines = await Question("How many machines (each runs di launch)?", "1", Number("machines", 1, 1024));
        var rank = machines > 1 ? await Question($"This machine's rank (0 to {machines - 1}; machine 0 hosts process 0)?", "0", Number("machine rank", 0, machines - 1)) : 0;
        var dtype = await Question("The dtype of the models (fp32, bf16, fp16, as --dtype)?", d.Dtype, answer => Cluster.LaunchConfig.DtypeName(answer));
        return new Cluster.LaunchConfig(processes, devices, ip, port, machines, rank, dtype);
    }
}
