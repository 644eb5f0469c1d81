using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// Options several commands share, spelled and checked the same way everywhere: <c>--seed N</c> is only ever a number
/// (random weights, sampling); <c>--join HOST:PORT</c> is only ever a cluster node to join.
/// </summary>
public static class SharedOptions
{
    /// <summary><c>--seed N</c>: a whole number; an old-style <c>--seed host:port</c> gets a hint to use <c>--join</c>.</summary>
    public static Option<long> Seed(string description) => new("--seed")
    {
        Description = description,
        DefaultValueFactory = _ => 0,
        CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Empty;
            if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed))
            {
                return seed;
            }

            result.AddError(text.Contains(':', StringComparison.Ordinal)
                ? $"--seed {text}: --seed is a number (random weights); to run on a cluster give --join {text}"
                : $"--seed {text}: give a whole number");
            return 0;
        },
    };

    /// <summary><c>--join HOST:PORT</c>, repeatable: a node of the cluster to join.</summary>
    public static Option<string[]> Join(string description) => new("--join")
    {
        Description = description,
        HelpName = "HOST:PORT",
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary><c>--secret-file FILE</c>: the cluster secret's file (<c>di secret</c> writes one); also <c>DI_CLUSTER_SECRET</c>.</summary>
    public static Option<string?> SecretFile() => new("--secret-file")
    {
        Description = "file holding the cluster secret (di secret > FILE makes one; also $DI_CLUSTER_SECRET); required off loopback",
        HelpName = "FILE",
    };

    /// <summary><c>--tls-certificate FILE</c>: the cluster's PKCS#12 certificate for mutual TLS (<c>di cert</c> writes one).</summary>
    public static Option<string?> TlsCertificate() => new("--tls-certificate")
    {
        Description = "PKCS#12 file (di cert FILE makes one; password in $DI_TLS_PASSWORD): mutual TLS with every node holding the same certificate",
        HelpName = "FILE",
    };

    /// <summary><c>--join-timeout SECONDS</c>: how long to try joining; left out: the configuration's join-timeout (15 s).</summary>
    public static Option<double?> JoinTimeout()
    {
        // Parsed here (not validated after System.CommandLine's parse): a value that is no number is one line, not a crash.
        return new Option<double?>("--join-timeout")
        {
            Description = "seconds to try joining the cluster before giving up (default: distributed-inference.join-timeout, 15 s)",
            HelpName = "SECONDS",
            CustomParser = result =>
            {
                var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Join(' ', result.Tokens.Select(t => t.Value));
                if (double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0 && double.IsFinite(seconds))
                {
                    return seconds;
                }

                result.AddError($"--join-timeout {text}: must be a positive number of seconds");
                return null;
            },
        };
    }

    /// <summary>Seconds as given to <c>--join-timeout</c>, as a time span.</summary>
    public static TimeSpan? Seconds(double? seconds) => seconds is { } s ? TimeSpan.FromSeconds(s) : null;

    /// <summary>
    /// <c>--prompts P...</c>: the prompts run up to the next option. A word that looks like an option (<c>--outptu</c>,
    /// <c>-x</c>) is refused rather than taken as a prompt, so a misspelt option never turns into a silent extra row.
    /// </summary>
    public static Option<string[]> Prompts(string description)
    {
        var prompts = new Option<string[]>("--prompts") { Description = description, AllowMultipleArgumentsPerToken = true, Arity = ArgumentArity.OneOrMore };
        prompts.Validators.Add(result =>
        {
            if (result.Tokens.FirstOrDefault(t => LooksLikeOption(t.Value)) is { } token)
            {
                result.AddError($"--prompts: '{token.Value}' is not an option of this command (a prompt that starts with - goes in --prompts-file)");
            }
        });
        return prompts;
    }

    // -x, --output-file: a dash, then a letter, then letters, digits or dashes (no spaces: "- a list" is a prompt).
    private static bool LooksLikeOption(string text)
    {
        var name = text.StartsWith("--", StringComparison.Ordinal) ? text[2..] : text.StartsWith('-') ? text[1..] : null;
        return name is { Length: > 0 } && char.IsAsciiLetter(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');
    }

    /// <summary><c>--task logits|classify|generate|embed</c>, parsed once into <see cref="InferenceTask"/>.</summary>
    public static Option<InferenceTask> Task(string description, InferenceTask defaultValue) =>
        Choice("--task", description, defaultValue, InferenceTasks.Parse, Enum.GetValues<InferenceTask>().Select(InferenceTasks.Name));

    /// <summary><c>--dtype fp32|fp16|bf16</c> (transformers' float32, float16, bfloat16 too), parsed once into <see cref="Precision"/>.</summary>
    public static Option<Precision> DType(string description, Precision defaultValue) =>
        Choice("--dtype", description, defaultValue, Precisions.Parse, Precisions.Names);

    /// <summary>
    /// An option naming one of a few values, parsed once by <paramref name="parse"/>; a bad value is the parser's one-line
    /// error (<paramref name="parse"/>'s <see cref="InvalidInputException"/> message: <c>unknown dtype 'fp8': use fp32, fp16 or
    /// bf16</c>), so the command exits 2 before it starts.
    /// </summary>
    internal static Option<T> Choice<T>(string name, string description, T defaultValue, Func<string, T> parse, IEnumerable<string> names)
        where T : struct, Enum
    {
        var values = names.ToList();
        var option = new Option<T>(name)
        {
            Description = description,
            HelpName = string.Join('|', values),
            DefaultValueFactory = _ => defaultValue,
            CustomParser = result =>
            {
                try
                {
                    return parse(result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Empty);
                }
                catch (InvalidInputException e)
                {
                    result.AddError(e.Message);
                    return defaultValue;
                }
            },
        };
        option.CompletionSources.Add(values.ToArray());
        return option;
    }

    /// <summary>The help line that lists a command's options, for errors: <c>di infer --help</c>.</summary>
    internal static string HelpCommand(ParseResult result)
    {
        var names = new List<string>();
        for (SymbolResult? symbol = result.CommandResult; symbol is CommandResult command && command.Parent is not null; symbol = command.Parent)
        {
            names.Insert(0, command.Command.Name);
        }

        return string.Join(' ', ["di", .. names, "--help"]);
    }
}
