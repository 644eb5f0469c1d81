using System.Collections;
using System.Runtime.CompilerServices;
using DistributedInference.Models;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// The row view of a job input: a list (or array, or tuple), a tensor (rows along dim 0), or a dictionary of
/// those, nested to any depth, whose leaves all have the same number of rows. Anything else (a string, a number,
/// null) cannot be split and is an error rather than a silent copy to every rank.
/// </summary>
public static class Rows
{
    /// <summary>Number of rows; for a dictionary, the common length of its leaves (not its number of keys).</summary>
    public static int Count(object? input) => input switch
    {
        Tensor tensor => tensor.dim() == 0
            ? throw Unsplittable("a 0-dimensional tensor")
            : checked((int)tensor.shape[0]),
        IReadOnlyDictionary<string, object> dictionary => CountLeaves(dictionary),
        string => throw Unsplittable("a string (wrap it in a list to split a list of strings)"),
        IList list => list.Count,
        ITuple tuple => tuple.Length,
        null => throw Unsplittable("null"),
        _ => throw Unsplittable($"a {input.GetType().Name}"),
    };

    /// <summary>Rows [start, start + count) of the input, of the same shape of container.</summary>
    public static object Slice(object input, int start, int count) => input switch
    {
        Tensor tensor => tensor.narrow(0, start, count),
        IReadOnlyDictionary<string, object> dictionary => Map(dictionary, value => Slice(value, start, count)),
        IList list => Enumerable.Range(start, count).Select(i => list[i]).ToArray(),
        ITuple tuple => Enumerable.Range(start, count).Select(i => tuple[i]).ToArray(),
        _ => throw Unsplittable($"a {input.GetType().Name}"),
    };

    /// <summary>The rows of <paramref name="slice"/> followed by <paramref name="padding"/> copies of the last row of <paramref name="input"/>.</summary>
    public static object Pad(object slice, object input, int padding)
    {
        if (padding == 0)
        {
            return slice;
        }

        var last = Slice(input, Count(input) - 1, 1);
        var padded = Concat([slice, .. Enumerable.Repeat(last, padding)]);

        // Joined into new tensors: the views cut for the join are not needed any more (list items are passed on).
        RowOwnership.DisposeExcept(new[] { slice, last }, padded);
        return padded;
    }

    /// <summary>Joins row-wise parts of the same kind back into one input (tensors along dim 0, lists, dictionaries key by key).</summary>
    public static object Concat(IReadOnlyList<object> parts)
    {
        if (parts.Count == 0)
        {
            throw new ArgumentException("nothing to concatenate", nameof(parts));
        }

        return parts[0] switch
        {
            Tensor => cat(parts.Cast<Tensor>().ToArray(), 0),
            IReadOnlyDictionary<string, object> first => first.Keys.ToDictionary(
                key => key,
                key => Concat(parts.Select(p => ((IReadOnlyDictionary<string, object>)p)[key]).ToList())) as IReadOnlyDictionary<string, object>,
            IList or ITuple => parts.SelectMany(Items).ToArray(),
            var other => throw Unsplittable($"a {other.GetType().Name}"),
        };
    }

    /// <summary>
    /// <paramref name="count"/> blank rows shaped like the rows of <paramref name="like"/>: zeros of its dtype and row
    /// shape for a tensor (a new tensor the caller owns), nulls for a list, key by key for a dictionary.
    /// </summary>
    public static object Blank(object like, int count) => like switch
    {
        Tensor tensor => zeros([count, .. tensor.shape.Skip(1)], tensor.dtype),
        IReadOnlyDictionary<string, object> dictionary => Map(dictionary, value => Blank(value, count)),
        IList or ITuple => new object?[count],
        _ => throw Unsplittable($"a {like.GetType().Name}"),
    };

    private static IEnumerable<object?> Items(object part) => part switch
    {
        IList list => list.Cast<object?>(),
        ITuple tuple => Enumerable.Range(0, tuple.Length).Select(i => tuple[i]),
        _ => throw Unsplittable($"a {part.GetType().Name}"),
    };

    private static int CountLeaves(IReadOnlyDictionary<string, object> dictionary)
    {
        if (dictionary.Count == 0)
        {
            throw Unsplittable("an empty dictionary");
        }

        var counts = dictionary.Select(pair => (pair.Key, Count: Count(pair.Value))).ToList();
        var distinct = counts.Select(c => c.Count).Distinct().ToList();
        if (distinct.Count > 1)
        {
            throw new InvalidInputException(
                $"dictionary values have different numbers of rows ({string.Join(", ", counts.Select(c => $"{c.Key}: {c.Count}"))}); all must match to split");
        }

        return distinct[0];
    }

    private static IReadOnlyDictionary<string, object> Map(IReadOnlyDictionary<string, object> dictionary, Func<object, object> map) =>
        dictionary.ToDictionary(pair => pair.Key, pair => map(pair.Value));

    private static InvalidInputException Unsplittable(string what) =>
        new($"cannot split {what}: give a list, a tensor, or a dictionary of them");
}
