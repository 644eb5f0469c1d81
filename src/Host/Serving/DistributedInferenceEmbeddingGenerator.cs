using DistributedInference.Models.Tasks;
using Microsoft.Extensions.AI;

namespace DistributedInference.Host.Serving;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over a served sentence-transformers
/// model (the same engine as <c>di serve</c>'s <c>/v1/embeddings</c>): texts are tokenized and truncated as
/// sentence-transformers does, embedded on the devices, pooled and normalised as the folder says.
/// </summary>
public sealed class DistributedInferenceEmbeddingGenerator(ServingHost host) : IEmbeddingGenerator<string, Embedding<float>>
{
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        await host.Started.WaitAsync(cancellationToken);
        var model = host.Model;
        var engine = host.Backend.Embeddings ?? throw new NotSupportedException($"{model.Name} does not embed");
        if (options?.Dimensions is not null)
        {
            throw new NotSupportedException("dimensions are the model's own");
        }

        var texts = values.ToList();
        if (texts.Count == 0)
        {
            return [];
        }

        var batch = model.Source.Tokenize(texts, InferenceTask.Embed);
        List<IReadOnlyList<long>> rows;
        using (var ids = batch.InputIds)
        using (var mask = batch.AttentionMask)
        {
            var width = (int)ids.shape[1];
            var all = ids.data<long>().ToArray();
            var valid = mask?.to(TorchSharp.torch.ScalarType.Int64).data<long>().ToArray();
            rows = Enumerable.Range(0, texts.Count).Select(r => (IReadOnlyList<long>)Enumerable.Range(0, width)
                .Where(t => valid is null || valid[(r * width) + t] != 0).Select(t => all[(r * width) + t]).ToList()).ToList();
        }

        var vectors = await engine.EmbedAsync(rows, cancellationToken);
        var tokens = rows.Sum(r => r.Count);
        return new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = model.Name, CreatedAt = DateTimeOffset.UtcNow }))
        {
            Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens },
        };
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(EmbeddingGeneratorMetadata) ? new EmbeddingGeneratorMetadata("distributed-inference", host.Address, host.Options.ServedModelName ?? host.Options.Model)
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        // The host owns the model and its devices.
    }
}
