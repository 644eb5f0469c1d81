using System.CommandLine;
using DistributedInference.Models;
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
    private readonly Option<double> _kvMemory = new("--kv-cache-memory") { Description = "continuous batching: MiB of keys and values each device holds (all layers); memory, not the number of requests, bounds a batch", DefaultValueFactory = _ => 1024, HelpName = "MIB" };
    private readonly Option<bool> _noPrefixCaching = new("--no-prefix-caching") { Description = "continuous batching: do not share the KV blocks of equal prompt prefixes between requests" };

    public IEnumerable<Option> Options => [_maxSeqs, _maxTokens, _blockSize, _kvMemory, _noPrefixCaching];

    /// <summary>The options given, checked.</summary>
    /// <exception cref="InvalidInputException">A limit below 1 (one line naming the options).</exception>
    public ContinuousBatchingOptions Read(ParseResult result)
    {
        var (maxSeqs, maxTokens, blockSize, kvMebibytes) = (result.GetValue(_maxSeqs), result.GetValue(_maxTokens), result.GetValue(_blockSize), result.GetValue(_kvMemory));
        if (maxSeqs < 1 || maxTokens < maxSeqs || blockSize < 1 || !(kvMebibytes > 0))
        {
            throw new InvalidInputException($"--max-num-seqs ({maxSeqs}) and --block-size ({blockSize}) must be at least 1, --max-num-batched-tokens ({maxTokens}) at least --max-num-seqs, --kv-cache-memory ({kvMebibytes}) positive");
        }

        return new ContinuousBatchingOptions(
            blockSize,
            (long)(kvMebibytes * 1024 * 1024),
            new IterationSchedulerOptions(maxSeqs, maxTokens, Math.Min(256, maxTokens), PrefixCaching: !result.GetValue(_noPrefixCaching)));
    }
}
