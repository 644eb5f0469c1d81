namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// Backpressure of a pipeline: micro-batches wait here, first in first out, and at most <see cref="Size"/> of them are
/// inside the pipe at once, whatever the number of calls and nodes (Akka.Remote never pushes back). A micro-batch that
/// comes back from the last stage, or fails in a stage, returns its credit. Plain and single-threaded: the coordinator
/// owns it.
/// </summary>
/// <typeparam name="T">What waits (micro-batches).</typeparam>
public sealed class CreditWindow<T>
{
    private readonly Queue<T> _waiting = new();

    /// <param name="size">Micro-batches allowed inside the pipe at once.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not positive.</exception>
    public CreditWindow(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Size = size;
    }

    /// <summary>Micro-batches allowed inside the pipe at once.</summary>
    public int Size { get; }

    /// <summary>Micro-batches inside the pipe now.</summary>
    public int InFlight { get; private set; }

    /// <summary>Micro-batches waiting for credit.</summary>
    public int Waiting => _waiting.Count;

    /// <summary>Queues <paramref name="item"/> behind what waits already.</summary>
    public void Enqueue(T item) => _waiting.Enqueue(item);

    /// <summary>A micro-batch left the pipe (its output came back, or it failed): its credit returns.</summary>
    public void Returned() => InFlight = Math.Max(0, InFlight - 1);

    /// <summary>
    /// The micro-batches that may enter the pipe now, in order; one that is no longer wanted (its call failed before it
    /// entered) is handed to <paramref name="drop"/> instead and costs no credit.
    /// </summary>
    public IReadOnlyList<T> Release(Func<T, bool> wanted, Action<T> drop)
    {
        var released = new List<T>();
        while (InFlight < Size && _waiting.TryDequeue(out var next))
        {
            if (!wanted(next))
            {
                drop(next);
                continue;
            }

            InFlight++;
            released.Add(next);
        }

        return released;
    }

    /// <summary>Everything still waiting, handed to <paramref name="drop"/> (the pipeline stopped).</summary>
    public void Clear(Action<T> drop)
    {
        while (_waiting.TryDequeue(out var item))
        {
            drop(item);
        }
    }
}
