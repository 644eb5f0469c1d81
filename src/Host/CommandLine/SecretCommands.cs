using System.CommandLine;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Host.Cluster;
using DistributedInference.Models;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di secret</c>: print a new random cluster secret (give every node and client <c>--secret-file</c> with it);
/// <c>di cert FILE</c>: write a new self-signed cluster certificate (PKCS#12, password from <c>DI_TLS_PASSWORD</c>)
/// for <c>--tls-certificate</c>.
/// </summary>
public static class SecretCommands
{
    public static Command CreateSecret()
    {
        var command = new Command("secret", "Print a new random cluster secret: di secret > cluster.secret, then --secret-file cluster.secret on every node and client.");
        command.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                await result.InvocationConfiguration.Output.WriteLineAsync(ClusterSecurity.NewSecret());
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    public static Command CreateCertificate()
    {
        var file = new Argument<string>("FILE") { Description = "where to write the PKCS#12 certificate (not overwritten)" };
        var days = new Option<int>("--days") { Description = "days the certificate is valid", DefaultValueFactory = _ => 365 };
        var command = new Command("cert", $"Write a new self-signed cluster certificate for --tls-certificate (password from ${ClusterSecret.TlsPasswordVariable}, none if unset).") { file, days };
        command.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var path = result.GetValue(file)!;
                if (File.Exists(path))
                {
                    throw new InvalidInputException($"{path} exists: choose another file or remove it first");
                }

                if (result.GetValue(days) <= 0)
                {
                    throw new InvalidInputException("--days must be positive");
                }

                var bytes = ClusterSecurity.NewSelfSignedCertificate(ClusterSecret.TlsPassword(), TimeSpan.FromDays(result.GetValue(days)));
                try
                {
                    await File.WriteAllBytesAsync(path, bytes);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new InvalidInputException($"{path}: cannot write the certificate there ({e.Message})", e);
                }

                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                await result.InvocationConfiguration.Error.WriteLineAsync($"di cert: wrote {path}; give every node and client --tls-certificate {path}");
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }
}
