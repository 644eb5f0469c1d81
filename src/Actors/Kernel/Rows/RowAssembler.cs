using static TorchSharp.torch;

namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// Puts rows back in input order, each row exactly once: parts arrive in any order as (first row, rows), a row already
/// here is not taken again (a late duplicate, the overlap of a resubmission), and rows that failed on their own are
/// marked and become blanks (zeros, or null in a list) in the join. The one reassembler of the runtime: replica jobs
/// (batches, padding already dropped), replica clients (streamed rows of resubmitted parts), pipeline calls
/// (micro-batches) and pipelined generation (micro-batches of sequences) all join through it.
/// <para>
/// Ownership: <see cref="Add"/> takes the part (the rows it keeps and the duplicates it drops are the assembler's);
/// <see cref="Join"/> hands the caller the joined rows (new tensors, or the list items themselves); whatever is still
/// held is released by <see cref="Dispose"/>. With <c>copyTensors</c>, tensor rows are copied into one output tensor
/// [total, ...] as they come and the part released at once, so no second copy of every row waits for the join.
/// </para>
/// </summary>
public sealed class RowAssembler : IDisposable
{
    private readonly bool _copyTensors;
    private readonly bool[] _done;
    private readonly SortedDictionary<int, RowBatch> _pieces = [];
    private readonly SortedDictionary<int, string> _failures = [];
    private Tensor? _output;

    /// <param name="total">Rows of the whole input.</param>
    /// <param name="copyTensors">Copy tensor rows into one preallocated output as they come (see the class notes).</param>
    public RowAssembler(int total, bool copyTensors = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        Total = total;
        _copyTensors = copyTensors;
        _done = new bool[total];
    }

    /// <summary>Rows of the whole input.</summary>
    public int Total { get; }

    /// <summary>Rows answered so far: with results, or failed.</summary>
    public int Done { get; private set; }

    /// <summary>Whether every row is answered.</summary>
    public bool Complete => Done == Total;

    /// <summary>The rows that failed on their own, by row, with their errors.</summary>
    public IReadOnlyList<(int Row, string Error)> Failures => [.. _failures.Select(pair => (pair.Key, pair.Value))];

    /// <summary>Whether <paramref name="row"/> is answered (results or failure).</summary>
    public bool Has(int row) => _done[row];

    /// <summary>
    /// Takes rows [<paramref name="start"/>, + <paramref name="rows"/>.Count) of the input; returns how many of them were
    /// new (the others were here already and are released).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The rows reach past <see cref="Total"/>.</exception>
    /// <exception cref="ArgumentException">Tensor rows whose shape or dtype differs from the rows copied before (with <c>copyTensors</c>); the part is released.</exception>
    public int Add(int start, RowBatch rows)
    {
        var count = rows.Count;
        if (start < 0 || start + count > Total)
        {
            rows.Dispose();
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) are not within the input's {Total} rows");
        }

        var runs = NewRuns(start, count);
        var added = runs.Sum(run => run.Count);
        if (_copyTensors && rows is TensorRows tensorRows && _pieces.Count == 0)
        {
            using (tensorRows.Tensor)
            {
                CopyIntoOutput(tensorRows.Tensor, start, runs);
            }
        }
        else if (runs.Count == 1 && runs[0] == (start, count))
        {
            // All of it is new: kept as it is (a staged batch, which cannot be cut, too).
            _pieces[start] = rows;
        }
        else
        {
            foreach (var (from, run) in runs)
            {
                _pieces[from] = rows.Slice(from - start, run);
            }

            ReleaseExcept(rows, runs, start);
        }

        foreach (var (from, run) in runs)
        {
            Array.Fill(_done, true, from, run);
        }

        Done += added;
        return added;
    }

    /// <summary>Marks <paramref name="row"/> failed on its own (a blank in the join); false when it was answered already.</summary>
    public bool Fail(int row, string error)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Total);
        if (_done[row])
        {
            return false;
        }

        _done[row] = true;
        _failures[row] = error;
        Done++;
        return true;
    }

    /// <summary>The ranges of rows not answered yet, in order, as (first row, rows).</summary>
    public IReadOnlyList<(int Start, int Count)> Missing()
    {
        var ranges = new List<(int Start, int Count)>();
        for (var row = 0; row < Total; row++)
        {
            if (!_done[row])
            {
                var start = row;
                while (row < Total && !_done[row])
                {
                    row++;
                }

                ranges.Add((start, row - start));
            }
        }

        return ranges;
    }

    /// <summary>
    /// Every row's results in input order, failed rows blank; null when no row has results (an empty input, or every row
    /// failed). The caller owns what it is handed; the assembler keeps nothing of it.
    /// </summary>
    public RowBatch? Join()
    {
        if (_output is { } output)
        {
            foreach (var row in _failures.Keys)
            {
                using var blank = output.narrow(0, row, 1);
                blank.zero_();
            }

            _output = null;
            return new TensorRows(output);
        }

        if (_pieces.Count == 0)
        {
            return null;
        }

        if (_pieces.Count == 1 && _failures.Count == 0)
        {
            // One part holds every row: handed over as it is, nothing copied.
            var only = _pieces.Values.First();
            _pieces.Clear();
            return only;
        }

        var like = _pieces.Values.First();
        foreach (var row in _failures.Keys)
        {
            _pieces[row] = like.Blank(1);
        }

        var parts = _pieces.Values.ToList();
        var joined = RowBatch.Concat(parts);

        // Joined into new tensors; list items are handed on in the join.
        parts.ForEach(part => part.DisposeViews());
        _pieces.Clear();
        return joined;
    }

    /// <summary>Releases every row still held (of a job that ends without a join, say).</summary>
    public void Dispose()
    {
        foreach (var piece in _pieces.Values)
        {
            piece.Dispose();
        }

        _pieces.Clear();
        _output?.Dispose();
        _output = null;
    }

    // The runs of rows [start, start + count) not answered yet, as (first row, rows).
    private List<(int From, int Count)> NewRuns(int start, int count)
    {
        var runs = new List<(int From, int Count)>();
        for (var row = start; row < start + count;)
        {
            if (_done[row])
            {
                row++;
                continue;
            }

            var from = row;
            while (row < start + count && !_done[row])
            {
                row++;
            }

            runs.Add((from, row - from));
        }

        return runs;
    }

    private void CopyIntoOutput(Tensor rows, int start, List<(int From, int Count)> runs)
    {
        _output ??= empty([Total, .. rows.shape.Skip(1)], rows.dtype);
        if (!_output.shape.Skip(1).SequenceEqual(rows.shape.Skip(1)) || _output.dtype != rows.dtype)
        {
            throw new ArgumentException($"batch results of different shapes cannot be joined: [{string.Join(", ", rows.shape)}] {rows.dtype} after [{string.Join(", ", _output.shape)}] {_output.dtype}", nameof(rows));
        }

        foreach (var (from, run) in runs)
        {
            using var source = rows.narrow(0, from - start, run);
            using var target = _output.narrow(0, from, run);
            target.copy_(source);
        }
    }

    // The part's own handles go (the pieces kept are views or share its list items); list items of rows that were here
    // already are released.
    private static void ReleaseExcept(RowBatch part, List<(int From, int Count)> kept, int start)
    {
        if (part is not ListRows list)
        {
            part.DisposeViews();
            return;
        }

        var keep = new bool[list.Count];
        foreach (var (from, run) in kept)
        {
            Array.Fill(keep, true, from - start, run);
        }

        for (var i = 0; i < list.Count; i++)
        {
            if (!keep[i])
            {
                RowOwnership.Dispose(list.Items[i]);
            }
        }
    }
}
