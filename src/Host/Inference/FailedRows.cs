using DistributedInference.Actors.Replica;

namespace DistributedInference.Host.Inference;

/// <summary>One line naming the rows of a job that failed alone, and the first one's error.</summary>
public static class FailedRows
{
    private const int Named = 20;

    /// <summary>"2 rows failed (3, 17); row 3: ..." with at most 20 row numbers.</summary>
    public static string Describe(IReadOnlyList<RowFailure> failed)
    {
        var ordered = failed.OrderBy(f => f.Index).ToList();
        var rows = string.Join(", ", ordered.Take(Named).Select(f => f.Index)) + (ordered.Count > Named ? $", ... ({ordered.Count - Named} more)" : string.Empty);
        return $"{ordered.Count} row{(ordered.Count == 1 ? string.Empty : "s")} failed ({rows}); row {ordered[0].Index}: {ordered[0].Error.Split('\n', 2)[0]}";
    }
}
