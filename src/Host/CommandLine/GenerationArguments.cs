using System.CommandLine;
using System.Globalization;
using DistributedInference.Models.Generation;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// The sampling options of task generate, in transformers' spelling and with its defaults, shared by <c>di infer</c>,
/// <c>di node</c> (whose devices generate) and <c>di launch</c> (which hands them to its nodes).
/// </summary>
public sealed class GenerationArguments
{
    private readonly Option<bool> _doSample = new("--do-sample") { Description = "generate: sample the next token instead of taking the most likely one (greedy)" };
    private readonly Option<double> _temperature = new("--temperature") { Description = "generate with --do-sample: divide the logits by this (> 0; lower is closer to greedy)", DefaultValueFactory = _ => 1.0 };
    private readonly Option<int> _topK = new("--top-k") { Description = "generate with --do-sample: keep the k most likely tokens (0: all)", DefaultValueFactory = _ => 50 };
    private readonly Option<double> _topP = new("--top-p") { Description = "generate with --do-sample: keep the most likely tokens whose probability reaches p, in (0, 1]", DefaultValueFactory = _ => 1.0 };

    public IEnumerable<Option> Options => [_doSample, _temperature, _topK, _topP];

    /// <summary>The options given, with the job's token budget and seed; checked (one line naming a bad value).</summary>
    public GenerationOptions Read(ParseResult result, int maxNewTokens, long seed) =>
        new GenerationOptions(maxNewTokens, result.GetValue(_doSample), result.GetValue(_temperature), result.GetValue(_topK), result.GetValue(_topP), seed).Validate();

    /// <summary>
    /// The warning for sampling options given without <c>--do-sample</c>, which greedy generation does not read
    /// (transformers' <c>generate</c> warns the same way); null when there is nothing to say.
    /// </summary>
    public string? IgnoredSamplingWarning(ParseResult result)
    {
        if (result.GetValue(_doSample))
        {
            return null;
        }

        var given = new Option[] { _temperature, _topK, _topP }.Where(o => result.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
        return given.Count == 0
            ? null
            : $"di: warning: {string.Join(", ", given)} {(given.Count == 1 ? "takes" : "take")} effect only with --do-sample; without it generation is greedy and ignores {(given.Count == 1 ? "it" : "them")}";
    }

    /// <summary>The command-line words that give <paramref name="options"/> to another <c>di</c> process (a launched node).</summary>
    public static IEnumerable<string> ToArguments(GenerationOptions options)
    {
        var invariant = CultureInfo.InvariantCulture;
        if (options.DoSample)
        {
            yield return "--do-sample";
        }

        yield return "--temperature";
        yield return options.Temperature.ToString("R", invariant);
        yield return "--top-k";
        yield return options.TopK.ToString(invariant);
        yield return "--top-p";
        yield return options.TopP.ToString("R", invariant);
    }
}
