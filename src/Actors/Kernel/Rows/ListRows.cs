using System.Collections;

namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// Rows as a list of values, one a row: prompts (<see cref="IsPrompts"/>), or other row values (strings, numbers,
/// booleans, null, tensors, completions, and lists or dictionaries of those). The batch owns the tensors in it.
/// </summary>
public sealed class ListRows : RowBatch
{
    private readonly IList _items;

    /// <exception cref="ArgumentException">An item is none of the values a row may hold.</exception>
    public ListRows(IList items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var prompts = true;
        foreach (var item in items)
        {
            CheckRowValue(item, "list item", depth: 1);
            prompts &= item is string;
        }

        _items = items;
        IsPrompts = prompts && items.Count > 0;
    }

    /// <summary>Whether every row is a string (prompts).</summary>
    public bool IsPrompts { get; }

    /// <summary>The rows' values.</summary>
    public IReadOnlyList<object?> Items => _items as IReadOnlyList<object?> ?? _items.Cast<object?>().ToList();

    /// <inheritdoc/>
    public override object Value => _items;

    /// <inheritdoc/>
    public override int Count => _items.Count;
}
