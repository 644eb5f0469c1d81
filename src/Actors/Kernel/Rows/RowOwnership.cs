using System.Collections;
using System.Runtime.CompilerServices;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// The tensor handling behind <see cref="RowBatch"/>, on raw values (a tensor, a list, a dictionary of them, a
/// <see cref="StagedBatch"/>; see <see cref="Rows"/>): cloning, new handles, disposing each handle once. The ownership
/// rule itself (the sender lets go, the receiver disposes, whatever is kept is cloned) is written on
/// <see cref="RowBatch"/>, the type every message that carries rows uses.
/// </summary>
public static class RowOwnership
{
    /// <summary>A deep copy: every tensor cloned (the caller owns them), lists and dictionaries copied; other leaves shared.</summary>
    public static object? Clone(object? rows) => rows switch
    {
        Tensor tensor => tensor.clone(),
        StagedBatch batch => Staged(batch, tensor => tensor.clone()),
        IReadOnlyDictionary<string, object> dictionary => dictionary.ToDictionary(pair => pair.Key, pair => Clone(pair.Value)!) as IReadOnlyDictionary<string, object>,
        string text => text,
        IList list => list.Cast<object?>().Select(Clone).ToArray(),
        ITuple tuple => Enumerable.Range(0, tuple.Length).Select(i => Clone(tuple[i])).ToArray(),
        _ => rows,
    };

    /// <summary>
    /// Disposes the tensor handles <see cref="Rows.Slice"/> made (a tensor's view, a dictionary's views), never the
    /// items of a list, which are the caller's own.
    /// </summary>
    public static void DisposeViews(object rows)
    {
        switch (rows)
        {
            case Tensor tensor:
                tensor.Dispose();
                break;
            case IReadOnlyDictionary<string, object> dictionary:
                foreach (var value in dictionary.Values)
                {
                    DisposeViews(value);
                }

                break;
        }
    }

    /// <summary>Disposes every tensor in <paramref name="rows"/> (nested lists and dictionaries included).</summary>
    public static void Dispose(object? rows) => DisposeExcept(rows, null);

    /// <summary>
    /// Disposes every tensor in <paramref name="owned"/> that is not also, by reference, a tensor of
    /// <paramref name="kept"/>: what a function that took <paramref name="owned"/> and returned <paramref name="kept"/>
    /// did not hand on.
    /// </summary>
    public static void DisposeExcept(object? owned, object? kept)
    {
        // Each handle once: a tensor held twice (a staged batch's activation that is its token ids) is disposed once.
        var done = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var tensor in Tensors(kept))
        {
            done.Add(tensor);
        }

        foreach (var tensor in Tensors(owned))
        {
            if (done.Add(tensor))
            {
                tensor.Dispose();
            }
        }
    }

    /// <summary>
    /// The same rows with handles of their own: every tensor (of a dictionary or staged batch too) a new handle on the
    /// same storage, which a receiver may dispose while the given ones stay valid; tensors inside a list are cloned
    /// (see <see cref="Detach"/>); plain values are shared.
    /// </summary>
    public static object? Handles(object? rows) => rows switch
    {
        Tensor tensor => tensor.alias(),
        StagedBatch batch => Staged(batch, tensor => tensor.alias()),
        IReadOnlyDictionary<string, object> dictionary => dictionary.ToDictionary(pair => pair.Key, pair => Handles(pair.Value)!) as IReadOnlyDictionary<string, object>,
        string => rows,
        IList or ITuple => Clone(rows),
        _ => rows,
    };

    // A staged batch with each of its tensors mapped once: an activation that is its token ids stays one tensor.
    private static StagedBatch Staged(StagedBatch batch, Func<Tensor, Tensor> map)
    {
        var ids = map(batch.InputIds);
        var hidden = ReferenceEquals(batch.Hidden, batch.InputIds) ? ids : map(batch.Hidden);
        return new StagedBatch(hidden, ids, batch.AttentionMask is null ? null : map(batch.AttentionMask));
    }

    /// <summary>
    /// The first <paramref name="count"/> rows of <paramref name="rows"/>, taking ownership: tensors are cut to views of
    /// those rows (new handles) and the handles given are disposed; list items beyond the count are disposed.
    /// </summary>
    public static object Take(object rows, int count)
    {
        switch (rows)
        {
            case Tensor tensor when tensor.shape[0] == count:
                return tensor;
            case Tensor tensor:
                var view = tensor.narrow(0, 0, count);
                tensor.Dispose();
                return view;
            case IReadOnlyDictionary<string, object> dictionary:
                return dictionary.ToDictionary(pair => pair.Key, pair => Take(pair.Value, count)) as IReadOnlyDictionary<string, object>;
            default:
                var items = Rows.Slice(rows, 0, Rows.Count(rows));
                var all = (object?[])items;
                foreach (var dropped in all.Skip(count))
                {
                    Dispose(dropped);
                }

                return all.Take(count).ToArray();
        }
    }

    /// <summary>
    /// Rows safe to hand to a receiver that disposes them: a tensor or a dictionary's tensors are already fresh handles
    /// (views from <see cref="Rows.Slice"/>) and pass as they are; tensors inside a list are the caller's own items, so
    /// they are cloned.
    /// </summary>
    public static object Detach(object rows) => rows switch
    {
        Tensor => rows,
        IReadOnlyDictionary<string, object> dictionary => dictionary.ToDictionary(pair => pair.Key, pair => Detach(pair.Value)) as IReadOnlyDictionary<string, object>,
        string => rows,
        IList or ITuple => Clone(rows)!,
        _ => rows,
    };

    private static IEnumerable<Tensor> Tensors(object? rows)
    {
        switch (rows)
        {
            case Tensor tensor:
                yield return tensor;
                break;
            case StagedBatch batch:
                yield return batch.Hidden;
                yield return batch.InputIds;
                if (batch.AttentionMask is not null)
                {
                    yield return batch.AttentionMask;
                }

                break;
            case IReadOnlyDictionary<string, object> dictionary:
                foreach (var tensor in dictionary.Values.SelectMany(Tensors))
                {
                    yield return tensor;
                }

                break;
            case string:
                break;
            case IEnumerable items:
                foreach (var tensor in items.Cast<object?>().SelectMany(Tensors))
                {
                    yield return tensor;
                }

                break;
            case ITuple tuple:
                foreach (var tensor in Enumerable.Range(0, tuple.Length).SelectMany(i => Tensors(tuple[i])))
                {
                    yield return tensor;
                }

                break;
        }
    }
}
