namespace DistributedInference.Models.Templates;

/// <summary>
/// A Python tuple: an immutable sequence, hashable, never equal to a list. <see cref="FieldNames"/> makes it a named
/// tuple (what <c>groupby</c> yields: <c>group.grouper</c>, <c>group.list</c>).
/// </summary>
internal sealed class PyTuple(IReadOnlyList<object?> items, IReadOnlyList<string>? fieldNames = null)
{
    public static readonly PyTuple Empty = new([]);

    public IReadOnlyList<object?> Items { get; } = items;

    public IReadOnlyList<string>? FieldNames { get; } = fieldNames;

    public int Count => Items.Count;
}
