using DistributedInference.Actors.Processes;
using Microsoft.Extensions.DependencyInjection;

namespace DistributedInference.Actors.Hosting;

/// <summary>Registers the <see cref="ProcessState"/> of a process started by <c>di launch</c> in a host app.</summary>
public static class ProcessStateHostingExtensions
{
    /// <summary>
    /// Registers <see cref="ProcessState.FromEnvironment"/> as a singleton: created (joining the launch's group) when
    /// first resolved, disposed (leaving the group) with the service provider. Outside a launch it is a group of one.
    /// </summary>
    public static IServiceCollection AddProcessState(this IServiceCollection services) =>
        services.AddSingleton(_ => ProcessState.FromEnvironment());
}
