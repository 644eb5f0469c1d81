using System.Collections;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Splitting;

/// <summary>
/// Who owns the tensors in a payload of rows (a tensor, a list, a dictionary of them; see <see cref="Rows"/>). One rule
/// for every message that carries rows (<c>RunBatch.Rows</c>, <c>BatchCompleted.Results</c>,
/// <c>RowsCompleted.Results</c>, <c>JobCompleted.Results</c>, <c>MicroBatch.Payload</c>,
/// <c>PipelineCompleted.Output</c>): the sender lets go of what it sends, the receiver disposes it, and whatever one
/// side keeps while handing rows to another is a clone (<see cref="Clone"/>). Across nodes the serializer copies, so
/// the receiver owns its copy all the same.
/// </summary>
public static class RowOwnership
{
    /// <summary>A deep copy: every tensor cloned (the caller owns them), lists and dictionaries copied; other leaves shared.</summary>
    public static object? Clone(object? rows) => rows switch
    {
        Tensor tensor => tensor.clone(),
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
        var keep = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var tensor in Tensors(kept))
        {
            keep.Add(tensor);
        }

        foreach (var tensor in Tensors(owned))
        {
            if (!keep.Contains(tensor))
            {
                tensor.Dispose();
            }
        }
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
