using System.CommandLine;
using DistributedInference.Models;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// The continuous-batching options in vLLM's spelling, shared by <c>di serve</c> (this machine's devices) and <c>di node</c>
/// (a node's engines, which <c>di serve --join</c> sends requests to).
/// </summary>
public sealed class ContinuousBatchingArguments
{
    private readonly Option<int> _maxSeqs = new("--max-num-seqs") { Description = "continuous batching: sequences a device runs side by side at most", DefaultValueFactory = _ => 64 };
    private readonly Option<int> _maxTokens = new("--max-num-batched-tokens") { Description = "continuous batching: tokens one step computes at most (decode and prompt chunks together); a long prompt is prefilled in chunks of at most min(256, this)", DefaultValueFactory = _ => 512 };
    private readonly Option<int> _blockSize = new("--block-size") { Description = "continuous batching: positions per KV cache block", DefaultValueFactory = _ => 16 };
    private readonly Option<double?> _kvMemory = new("--kv-cache-memory") { Description = "continuous batching: MiB of keys and values each engine (each entry of --devices) holds, all layers; memory, not the number of requests, bounds a batch (default: the smaller of 4096 and half the memory free after the weights, shared by a device's engines)", HelpName = "MIB" };
    private readonly Option<string?> _maxMemory = new("--max-memory") { Description = "continuous batching: memory budgets per device for weights and KV cache together, as Accelerate's max_memory: cpu=6GiB,cuda:0=20GiB; the KV cache gets what the weights and the step workspace leave" };
    private readonly Option<bool> _noPrefixCaching = new("--no-prefix-caching") { Description = "continuous batching: do not share the KV blocks of equal prompt prefixes between requests" };

    private const double MostMebibytes = 1L << 40;

    public IEnumerable<Option> Options => [_maxSeqs, _maxTokens, _blockSize, _kvMemory, _maxMemory, _noPrefixCaching];

    /// <summary>The options given, checked.</summary>
    /// <exception cref="InvalidInputException">A limit below 1, a cache size that is not positive, a bad budget, or both a
    /// size and a budget (one line naming the options).</exception>
    public ContinuousBatchingOptions Read(ParseResult result)
    {
        var (maxSeqs, maxTokens, blockSize, kvMebibytes) = (result.GetValue(_maxSeqs), result.GetValue(_maxTokens), result.GetValue(_blockSize), result.GetValue(_kvMemory));
        if (maxSeqs < 1 || blockSize < 1)
        {
            throw new InvalidInputException($"--max-num-seqs ({maxSeqs}) and --block-size ({blockSize}) must be at least 1");
        }

        if (maxTokens < maxSeqs)
        {
            throw new InvalidInputException($"--max-num-batched-tokens ({maxTokens}) must be at least --max-num-seqs ({maxSeqs})");
        }

        if (kvMebibytes is { } given && !(given * 1024 * 1024 >= 1 && given <= MostMebibytes))
        {
            throw new InvalidInputException($"--kv-cache-memory must be a positive number of MiB (at most 2^40), got {given.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }

        var maxMemory = result.GetValue(_maxMemory) is { } text ? MaxMemory.Parse(text) : null;
        var bytes = kvMebibytes is { } mebibytes ? (long)(mebibytes * 1024 * 1024) : (long?)null;
        return new ContinuousBatchingOptions(
            blockSize,
            bytes ?? KvCacheBudget.UnknownFreeDefault,
            new IterationSchedulerOptions(maxSeqs, maxTokens, Math.Min(256, maxTokens), PrefixCaching: !result.GetValue(_noPrefixCaching)),
            Budget: new KvCacheBudget(bytes, maxMemory).Validated());
    }
}
