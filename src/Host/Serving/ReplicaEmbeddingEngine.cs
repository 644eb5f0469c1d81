using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Host.Serving;

/// <summary>The <see cref="IEmbeddingEngine"/> of today's replica path: one replica job of token rows per request.</summary>
public sealed class ReplicaEmbeddingEngine(Func<CancellationToken, Task<ReplicaClient>> client, ModelIdentity modelIdentity, long padTokenId) : IEmbeddingEngine
{
    public async Task<IReadOnlyList<float[]>> EmbedAsync(IReadOnlyList<IReadOnlyList<long>> tokenIds, CancellationToken cancellation = default)
    {
        var replicas = await client(cancellation);
        var batch = TokenBatch.Pad(tokenIds, padTokenId, padLeft: false);
        var rows = TokenRows.Of(batch.InputIds, batch.AttentionMask);
        JobResult result;
        try
        {
            result = await replicas.RunAsync(rows, new JobOptions(MaxBatchSize: 32) { Model = modelIdentity }, cancellation: cancellation);
        }
        catch (JobFailedException e)
        {
            throw new EngineUnavailableException($"no device could run the request: {e.Message}", e);
        }
        finally
        {
            RowOwnership.Dispose(rows);
        }

        try
        {
            if (result.FailedRows.Count > 0 || result.Results is not Tensor embeddings)
            {
                throw new EngineUnavailableException($"the request failed on every device that tried it: {(result.FailedRows.Count > 0 ? result.FailedRows[0].Error : "no result")}");
            }

            using var cpu = embeddings.to(ScalarType.Float32).cpu();
            return Enumerable.Range(0, (int)cpu.shape[0]).Select(i => cpu[i].data<float>().ToArray()).ToList();
        }
        finally
        {
            RowOwnership.Dispose(result.Results);
        }
    }
}
