using System.CommandLine;
using DistributedInference.Actors.Configuration;
using DistributedInference.Models;

namespace DistributedInference.Host.CommandLine;

/// <summary><c>di config default [--config-file F]</c>: the commented default configuration, to edit and pass back with --config-file.</summary>
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
        return new Command("config", "Configuration files.") { defaults };
    }
}
