namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// Rows as named columns of the same number of rows (such as input_ids and attention_mask, each [B, T] int64); a
/// column may itself be a dictionary, split by its leaves' rows. The batch owns the tensors in it.
/// </summary>
public sealed class DictionaryRows : RowBatch
{
    /// <exception cref="ArgumentException">A value is none of the values a row may hold.</exception>
    public DictionaryRows(IReadOnlyDictionary<string, object> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        foreach (var (key, item) in columns)
        {
            CheckRowValue(item, $"dictionary value '{key}'", depth: 1);
        }

        Columns = columns;
    }

    /// <summary>The columns by name.</summary>
    public IReadOnlyDictionary<string, object> Columns { get; }

    /// <inheritdoc/>
    public override object Value => Columns;

    /// <inheritdoc/>
    /// <exception cref="Models.InvalidInputException">No columns, or columns of different row counts.</exception>
    public override int Count => Rows.Count(Columns);
}
