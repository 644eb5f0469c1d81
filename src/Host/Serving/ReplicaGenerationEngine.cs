using System.Runtime.CompilerServices;
using System.Threading.Channels;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Host.Serving;

/// <summary>
/// The <see cref="IGenerationEngine"/> of today's replica path: each request is one replica job (its sequence as the
/// job's one row, <see cref="ServingRows"/>) sent through a <see cref="ReplicaClient"/>, to this process's device
/// actors or to the cluster's job coordinators, which queue it on a device serving the model (a
/// <see cref="ServingReplica"/>). On a device in this process the tokens stream as they are chosen
/// (<see cref="TokenStreams"/>) and cancelling stops the sequence at the next step; on another node they arrive with
/// the job's result. One job per request, not a batching window: a device's mailbox already queues jobs fairly, each
/// sequence gets exactly the tokens it gets alone, and batching requests that join and leave mid-generation is the
/// continuous-batching engine's work.
/// </summary>
public sealed class ReplicaGenerationEngine(Func<CancellationToken, Task<ReplicaClient>> client, ModelIdentity modelIdentity, long padTokenId) : IGenerationEngine
{
    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        request.Sampling.Validate();
        var replicas = await client(cancellation);
        var tokens = Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true });
        var listener = new Listener(tokens.Writer, cancellation);
        using var registration = TokenStreams.Listen(request.RequestId, listener);
        var rows = ServingRows.Of([request], padTokenId, [request.SequenceIndex]);
        var job = RunAsync(replicas, rows, cancellation);
        var streamed = 0;
        while (!job.IsCompleted && !cancellation.IsCancellationRequested)
        {
            await Task.WhenAny(tokens.Reader.WaitToReadAsync(cancellation).AsTask(), job);
            var arrived = new List<GeneratedToken>();
            while (tokens.Reader.TryRead(out var token))
            {
                arrived.Add(token);
            }

            if (arrived.Count > 0)
            {
                streamed += arrived.Count;
                yield return new GenerationUpdate(arrived);
            }
        }

        if (cancellation.IsCancellationRequested)
        {
            // The device stops at its next token (the listener says cancelled); whatever the job returns is nobody's now.
            try
            {
                await job;
            }
            catch (Exception) when (cancellation.IsCancellationRequested)
            {
            }

            throw new OperationCanceledException(cancellation);
        }

        var (all, finish) = await job;
        yield return new GenerationUpdate(all.Skip(streamed).ToList(), finish);
    }

    private async Task<(IReadOnlyList<GeneratedToken> Tokens, FinishReason Finish)> RunAsync(ReplicaClient replicas, IReadOnlyDictionary<string, object> rows, CancellationToken cancellation)
    {
        var logprobs = ServingRows.Read(rows).Rows[0].Sampling.Logprobs;
        JobResult result;
        try
        {
            result = await replicas.RunAsync(rows, new JobOptions(MaxBatchSize: 1) { Model = modelIdentity }, cancellation: cancellation);
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
            if (result.FailedRows.Count > 0 || result.Results is null)
            {
                var reason = result.FailedRows.Count > 0 ? result.FailedRows[0].Error : "no result";
                throw new EngineUnavailableException($"the request failed on every device that tried it: {reason}");
            }

            return ServingRows.ReadResult(result.Results, 0, logprobs);
        }
        finally
        {
            RowOwnership.Dispose(result.Results);
        }
    }

    private sealed class Listener(ChannelWriter<GeneratedToken> writer, CancellationToken cancellation) : ITokenListener
    {
        public bool IsCancelled => cancellation.IsCancellationRequested;

        public void OnToken(GeneratedToken token) => writer.TryWrite(token);
    }
}
