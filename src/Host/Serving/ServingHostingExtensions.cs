using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace DistributedInference.Host.Serving;

/// <summary>Hosting a served model in an app built on Microsoft.Extensions.Hosting.</summary>
public static class ServingHostingExtensions
{
    /// <summary>
    /// Serves <see cref="ServeOptions.Model"/> from this host (on <see cref="ServeOptions.Devices"/>, or on the cluster of
    /// <see cref="ServeOptions.Join"/>), started with the host, and registers <see cref="IChatClient"/> (decoders) and
    /// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> of strings to <see cref="Embedding{T}"/> (sentence-transformers)
    /// over it; with <paramref name="serveHttp"/> the OpenAI-compatible HTTP server listens too
    /// (<see cref="ServeOptions.Host"/>:<see cref="ServeOptions.Port"/>; <see cref="ServingHost.Address"/>).
    /// </summary>
    public static IServiceCollection AddDistributedInferenceServing(this IServiceCollection services, ServeOptions options, bool serveHttp = false)
    {
        services.AddSingleton(new ServingHost(options, serveHttp));
        services.AddHostedService(provider => provider.GetRequiredService<ServingHost>());
        services.AddSingleton<IChatClient>(provider => new DistributedInferenceChatClient(provider.GetRequiredService<ServingHost>()));
        services.AddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(provider => new DistributedInferenceEmbeddingGenerator(provider.GetRequiredService<ServingHost>()));
        return services;
    }
}
