using DistributedInference.Models.Serving.Batching;

namespace DistributedInference.Models.Tests.Serving.Batching;

public sealed class KvBlockPoolTests
{
    private static readonly long[] Tokens = [.. Enumerable.Range(1, 12).Select(i => (long)i)];

    [Fact]
    public void Equal_prefixes_hash_equal_and_a_changed_token_changes_every_later_hash()
    {
        var a = BlockHash.Chain(Tokens, 4, 3);
        var changed = Tokens.ToArray();
        changed[5] = 99;
        var b = BlockHash.Chain(changed, 4, 3);
        Assert.Equal(a[0], b[0]);
        Assert.NotEqual(a[1], b[1]);
        Assert.NotEqual(a[2], b[2]);
        Assert.Equal(a, BlockHash.Chain(Tokens, 4, 3, a.Take(1).ToList()));

        // The same block of tokens after another prefix is another block.
        var shifted = BlockHash.Chain([.. Tokens.Skip(4).Take(4), .. Tokens.Skip(4).Take(4)], 4, 2);
        Assert.NotEqual(shifted[1], a[1]);
    }

    [Fact]
    public void Freed_cached_blocks_are_reused_by_a_later_prefix_and_evicted_least_recently_used_first()
    {
        var pool = new KvBlockPool(4, 4);
        var hashes = BlockHash.Chain(Tokens, 4, 2);
        var first = new List<int>();
        Assert.True(pool.TryAllocate(2, first));
        pool.Cache(first[0], hashes[0]);
        pool.Cache(first[1], hashes[1]);
        pool.Release(first);
        Assert.Equal(4, pool.FreeBlocks);
        Assert.Equal(2, pool.CachedBlocks);

        // Still cached after release: a later sequence with the prefix shares the same blocks.
        var hit = pool.MatchPrefix(hashes);
        Assert.Equal(first, hit);
        hit.ForEach(pool.Share);
        Assert.Equal(2, pool.UsedBlocks);
        pool.Release(hit);

        // Never-cached blocks go first; then the cached ones, the prefix's last block before its first.
        var taken = new List<int>();
        Assert.True(pool.TryAllocate(3, taken));
        Assert.Equal([first[0]], pool.MatchPrefix(hashes));
        Assert.DoesNotContain(first[0], taken);
        Assert.False(pool.TryAllocate(2, taken));
        Assert.Equal(3, taken.Count);
        Assert.Throws<InvalidOperationException>(() => pool.Release([first[0]]));
    }
}
