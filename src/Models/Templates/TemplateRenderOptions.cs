namespace DistributedInference.Models.Templates;

/// <summary>
/// The clock and the sandbox's bounds for one render. A template can read nothing but its variables and the clock
/// (no files, no network, no Python objects), and these bounds stop one that would loop or grow without end.
/// </summary>
public sealed record TemplateRenderOptions
{
    public static TemplateRenderOptions Default { get; } = new();

    /// <summary>The clock <c>strftime_now(format)</c> reads (transformers: <c>datetime.now()</c>, local time).</summary>
    public Func<DateTime> Now { get; init; } = () => DateTime.Now;

    /// <summary>Characters the rendered text may hold (default 16 Mi).</summary>
    public int MaxOutputLength { get; init; } = 16 * 1024 * 1024;

    /// <summary>Loop iterations one render may run, all loops together (default 1,000,000).</summary>
    public long MaxLoopIterations { get; init; } = 1_000_000;

    /// <summary>Macro calls that may be in progress at once (recursion depth; default 200).</summary>
    public int MaxCallDepth { get; init; } = 200;

    /// <summary>Items a string, list or range made by the template may hold (<c>*</c>, <c>+</c>, <c>range</c>).</summary>
    internal const long MaxSequenceLength = 16 * 1024 * 1024;
}
