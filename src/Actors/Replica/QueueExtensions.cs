namespace DistributedInference.Actors.Replica;

/// <summary>Queue helpers shared by the actors that keep their own work queue.</summary>
internal static class QueueExtensions
{
    /// <summary>Removes every item that matches, keeping the others in order.</summary>
    public static void RemoveWhere<T>(this Queue<T> queue, Func<T, bool> match)
    {
        var kept = queue.Where(item => !match(item)).ToList();
        queue.Clear();
        foreach (var item in kept)
        {
            queue.Enqueue(item);
        }
    }
}
