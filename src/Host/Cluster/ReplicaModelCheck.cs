using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// A replica job runs only on devices that hold the model it names, as a pipeline runs only on stage hosts serving
/// it: the same <see cref="ModelIdentity"/> (a folder by its name; a built-in by its name and seed), read from what
/// each device reports (<c>identity (task, dtype) on device</c>).
/// </summary>
public static class ReplicaModelCheck
{
    /// <summary>The model name in a device's status (<c>name (task, dtype) on device</c>); null when it has another form.</summary>
    public static string? ModelOf(DeviceStatus status)
    {
        var on = status.Model.LastIndexOf(" on ", StringComparison.Ordinal);
        var open = on < 0 ? -1 : status.Model.LastIndexOf(" (", on, StringComparison.Ordinal);
        return open <= 0 ? null : status.Model[..open];
    }

    /// <exception cref="InvalidInputException">A device (not still loading) holds another model than <paramref name="source"/>.</exception>
    public static void Check(IEnumerable<DeviceStatus> statuses, IModelSource source)
    {
        var wanted = ModelIdentity.Of(source.Name, source.RandomSeed);
        var other = statuses.FirstOrDefault(s => s.Model != "loading" && ModelOf(s) is { } name && name != wanted);
        if (other is not null)
        {
            throw new InvalidInputException(
                $"the cluster's devices serve {other.Model}, not model {wanted}: run the job with the nodes' --model, or start nodes with --model {source.Name}{(source.RandomSeed is { } seed ? $" --seed {seed}" : string.Empty)}");
        }
    }
}
