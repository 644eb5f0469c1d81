using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Models;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// Where <c>di node</c> and client mode find their credentials (read here only): the cluster secret from <c>--secret-file F</c> (its first line), else the
/// <see cref="ClusterSecurity.SecretVariable"/> environment variable, else none (loopback only). Never from the command
/// line itself, which other users of the machine can read.
/// </summary>
public static class ClusterSecret
{
    /// <summary>The environment variable holding the password of <c>--tls-certificate</c> (none: no password).</summary>
    public const string TlsPasswordVariable = "DI_TLS_PASSWORD";

    /// <summary>The password of <c>--tls-certificate</c>: <see cref="TlsPasswordVariable"/>, or none.</summary>
    public static string TlsPassword() => Environment.GetEnvironmentVariable(TlsPasswordVariable) ?? string.Empty;

    /// <summary>The secret, or null when neither the file nor the variable gives one.</summary>
    /// <exception cref="InvalidInputException">The file is missing, unreadable or empty.</exception>
    public static string? Read(string? secretFile)
    {
        if (secretFile is not null)
        {
            if (Directory.Exists(secretFile))
            {
                throw new InvalidInputException($"--secret-file {secretFile} is a folder, not a file ({ClusterSecurity.HowToMakeASecret})");
            }

            string text;
            try
            {
                text = File.ReadAllText(secretFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidInputException($"--secret-file {secretFile}: {e.Message}", e);
            }

            var secret = text.Split('\n', 2)[0].Trim();
            return secret.Length > 0 ? secret : throw new InvalidInputException($"--secret-file {secretFile}: the file is empty ({ClusterSecurity.HowToMakeASecret})");
        }

        var variable = Environment.GetEnvironmentVariable(ClusterSecurity.SecretVariable)?.Trim();
        return string.IsNullOrEmpty(variable) ? null : variable;
    }
}
