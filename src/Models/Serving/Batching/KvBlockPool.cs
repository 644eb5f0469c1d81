namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// The blocks of one device's paged key/value cache, by number (vLLM's <c>BlockPool</c>): each block holds the keys and
/// values of <see cref="BlockSize"/> positions of one sequence; a sequence holds a table of block numbers. A full block
/// of known tokens can be registered in the prefix cache under its <see cref="BlockHash"/>, and a later sequence with
/// the same prefix shares it (reference counts). Blocks nobody references wait in one free queue, least recently used
/// first: allocation takes from its head and evicts a cached block's hash only then, so a freed block's contents stay
/// reusable until its space is needed. Plain bookkeeping: the tensors live in the executor's store.
/// Not thread-safe: one scheduler owns it.
/// </summary>
public sealed class KvBlockPool
{
    private readonly int[] _references;
    private readonly BlockHash?[] _hashes;
    private readonly LinkedList<int> _free = new();
    private readonly LinkedListNode<int>?[] _freeNodes;
    private readonly Dictionary<BlockHash, int> _cached = new();

    /// <param name="blocks">Blocks in the pool (at least 1).</param>
    /// <param name="blockSize">Positions per block (at least 1; 16 is vLLM's default).</param>
    /// <exception cref="ArgumentOutOfRangeException">A count below 1.</exception>
    public KvBlockPool(int blocks, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blocks, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        BlockSize = blockSize;
        TotalBlocks = blocks;
        _references = new int[blocks];
        _hashes = new BlockHash?[blocks];
        _freeNodes = new LinkedListNode<int>?[blocks];
        for (var b = 0; b < blocks; b++)
        {
            _freeNodes[b] = _free.AddLast(b);
        }
    }

    /// <summary>Positions per block.</summary>
    public int BlockSize { get; }

    /// <summary>Blocks in the pool.</summary>
    public int TotalBlocks { get; }

    /// <summary>Blocks no sequence references (cached ones included: they are evicted when their space is needed).</summary>
    public int FreeBlocks => _free.Count;

    /// <summary>Blocks referenced by at least one sequence.</summary>
    public int UsedBlocks => TotalBlocks - FreeBlocks;

    /// <summary>Blocks registered in the prefix cache (in use or free).</summary>
    public int CachedBlocks => _cached.Count;

    /// <summary>Sequences referencing <paramref name="block"/>.</summary>
    public int References(int block) => _references[block];

    /// <summary>Blocks needed to hold <paramref name="positions"/> positions.</summary>
    public int BlocksFor(long positions) => (int)((positions + BlockSize - 1) / BlockSize);

    /// <summary>The cached blocks holding the longest prefix of <paramref name="hashes"/>, in order (no reference taken).</summary>
    public List<int> MatchPrefix(IReadOnlyList<BlockHash> hashes)
    {
        var blocks = new List<int>();
        foreach (var hash in hashes)
        {
            if (!_cached.TryGetValue(hash, out var block))
            {
                break;
            }

            blocks.Add(block);
        }

        return blocks;
    }

    /// <summary>Takes a reference to <paramref name="block"/> (a cached block found by <see cref="MatchPrefix"/>).</summary>
    public void Share(int block)
    {
        if (_references[block]++ == 0)
        {
            _free.Remove(_freeNodes[block]!);
            _freeNodes[block] = null;
        }
    }

    /// <summary>Takes <paramref name="count"/> blocks from the head of the free queue (evicting their cached contents) into <paramref name="into"/>.</summary>
    /// <returns>False, taking nothing, when fewer blocks are free.</returns>
    public bool TryAllocate(int count, List<int> into)
    {
        if (count > _free.Count)
        {
            return false;
        }

        for (var i = 0; i < count; i++)
        {
            var block = _free.First!.Value;
            _free.RemoveFirst();
            _freeNodes[block] = null;
            if (_hashes[block] is { } hash)
            {
                _cached.Remove(hash);
                _hashes[block] = null;
            }

            _references[block] = 1;
            into.Add(block);
        }

        return true;
    }

    /// <summary>
    /// Drops one reference to each of <paramref name="blocks"/>; a block nobody references joins the free queue's tail,
    /// in reverse order (a sequence's last blocks, the least likely to be shared, are evicted first).
    /// </summary>
    /// <exception cref="InvalidOperationException">A block that nobody references.</exception>
    public void Release(IReadOnlyList<int> blocks)
    {
        for (var i = blocks.Count - 1; i >= 0; i--)
        {
            var block = blocks[i];
            if (_references[block] <= 0)
            {
                throw new InvalidOperationException($"KV block {block} released more often than taken");
            }

            if (--_references[block] == 0)
            {
                _freeNodes[block] = _free.AddLast(block);
            }
        }
    }

    /// <summary>
    /// Registers a full block under <paramref name="hash"/>; when another block already holds that prefix, the first one
    /// stays the cached one (this one is freed as usual when its sequence ends).
    /// </summary>
    public void Cache(int block, BlockHash hash)
    {
        if (_hashes[block] is not null || _cached.ContainsKey(hash))
        {
            return;
        }

        _hashes[block] = hash;
        _cached[hash] = block;
    }

    /// <summary>Unregisters every block from the prefix cache (their contents are gone); references are unchanged.</summary>
    public void ForgetCache()
    {
        _cached.Clear();
        Array.Clear(_hashes);
    }
}
