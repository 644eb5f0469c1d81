namespace DistributedInference.Actors.Processes;

/// <summary>The processes of one launch, as each of them sees the group: a barrier and an all-gather.</summary>
public interface IProcessGroup
{
    int Size { get; }

    /// <summary>Returns once every process of the group has called it (the same number of times).</summary>
    void Barrier(int rank);

    /// <summary>Every process's part, in rank order; every process must call it.</summary>
    IReadOnlyList<object> AllGather(int rank, object part);
}
