using System.Runtime.CompilerServices;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Replica;
using DistributedInference.Host.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Host.Batch;

/// <summary>One sequence of a batch request (choice <paramref name="Index"/>), or one input row of an embeddings request.</summary>
public sealed record BatchUnit(BatchPending Request, int Index)
{
    /// <summary>What the unit's padding cost goes by: its prompt (or input) tokens, then its token budget.</summary>
    public (int Tokens, int Budget) Length => Request switch
    {
        { Generation: { } g } => (g.Sequences[Index].PromptTokenIds.Count, g.Sequences[Index].Sampling.MaxTokens),
        { Embedding: { } e } => (e.Rows[Index].Count, 0),
        _ => (Request.Images!.Options.Height!.Value * Request.Images.Options.Width!.Value, Request.Images.Options.NumInferenceSteps),
    };

    /// <summary>What units of one job must share: their kind, and for images their size (a job's images concatenate).</summary>
    public (int Kind, int Height, int Width) JobKey => Request switch
    {
        { Generation: not null } => (0, 0, 0),
        { Embedding: not null } => (1, 0, 0),
        _ => (2, Request.Images!.Options.Height!.Value, Request.Images.Options.Width!.Value),
    };
}

/// <summary>
/// Runs a chunk of batch units as one replica job: generation units as <see cref="ServingRows"/> on decoder replicas
/// (<see cref="ServingReplica"/>: each sequence its own sampling, budget and stop ids), embedding units as token rows
/// padded on the right. Each unit's result (or its row's failure) goes to its request; the replica path isolates a
/// row that fails alone (<see cref="JobResult.FailedRows"/>), so one poison request fails only itself.
/// </summary>
public sealed class BatchJobs(ReplicaClient client, ServedModel model, int maxBatchSize)
{
    private readonly JobOptions _options = new(MaxBatchSize: maxBatchSize) { Model = model.Identity };

    /// <exception cref="JobFailedException">No device could run the job (the batch stops; a new run resumes it).</exception>
    public async Task RunGenerationAsync(IReadOnlyList<BatchUnit> units, CancellationToken cancellation)
    {
        var requests = units.Select(u => u.Request.Generation!.Sequences[u.Index]).ToList();
        var rows = ServingRows.Of(requests, model.Source.PadTokenId, requests.Select(r => r.SequenceIndex).ToList());
        var result = await RunAsync(rows, units, cancellation);
        if (result is null)
        {
            return;
        }

        try
        {
            await EachRowAsync(result, units, async (i, unit) =>
            {
                var (tokens, finish) = ServingRows.ReadResult(result.Results!, i, requests[i].Sampling.Logprobs);
                var deltas = SequenceRunner.RunAsync(new Finished(tokens, finish), requests[i], unit.Index, model.Tokenizer, unit.Request.Generation!.Sampling, cancellation);
                unit.Request.Complete(unit.Index, (await CompletionsEndpoint.Collect(Renumbered(deltas), 1))[0]);
            });
        }
        finally
        {
            RowOwnership.Dispose(result.Results);
        }
    }

    /// <exception cref="JobFailedException">No device could run the job (the batch stops; a new run resumes it).</exception>
    public async Task RunEmbeddingAsync(IReadOnlyList<BatchUnit> units, CancellationToken cancellation)
    {
        var batch = TokenBatch.Pad(units.Select(u => u.Request.Embedding!.Rows[u.Index]).ToList(), model.Source.PadTokenId, padLeft: false);
        var rows = TokenRows.Of(batch.InputIds, batch.AttentionMask);
        var result = await RunAsync(rows, units, cancellation);
        if (result is null)
        {
            return;
        }

        try
        {
            using var vectors = result.Results is Tensor t ? t.to(ScalarType.Float32).cpu() : null;
            await EachRowAsync(result, units, (i, unit) =>
            {
                using var vector = vectors![i];
                unit.Request.Complete(unit.Index, vector.data<float>().ToArray());
                return Task.CompletedTask;
            });
        }
        finally
        {
            RowOwnership.Dispose(result.Results);
        }
    }

    /// <summary>Runs image units (one size) as one text-to-image job; each image is written as a PNG file in
    /// <paramref name="folder"/> (response_format url) or kept as base64 (b64_json).</summary>
    /// <exception cref="JobFailedException">No device could run the job (the batch stops; a new run resumes it).</exception>
    public async Task RunImagesAsync(IReadOnlyList<BatchUnit> units, string folder, CancellationToken cancellation)
    {
        var tokenizer = ((Models.Auto.StableDiffusionModelSource)model.Source).Source.Tokenizer;
        var requests = units.Select(u => u.Request.Images!).ToList();
        var ids = tokenizer.Tokenize(requests.Select(r => r.Prompt).ToList());
        var negative = tokenizer.Tokenize(requests.Select(r => r.NegativePrompt).ToList());
        var rows = TextToImageRows.Of(ids, negative, requests.Select(r => r.Options).ToList(), tensor(units.Select(u => (long)u.Index).ToArray()));
        var result = await RunAsync(rows, units, cancellation);
        if (result is null)
        {
            return;
        }

        try
        {
            await EachRowAsync(result, units, (i, unit) =>
            {
                using var image = ((Tensor)result.Results!)[i];
                if (requests[i].Base64)
                {
                    unit.Request.Complete(unit.Index, Convert.ToBase64String(Models.Diffusion.PngImage.Encode(image)));
                    return Task.CompletedTask;
                }

                Directory.CreateDirectory(folder);
                var path = Path.Combine(folder, PreparedImages.FileName(unit.Request.Line.CustomId!, unit.Index));
                Models.Diffusion.PngImage.Save(image, path);
                unit.Request.Complete(unit.Index, PreparedImages.FileUrl(path));
                return Task.CompletedTask;
            });
        }
        finally
        {
            RowOwnership.Dispose(result.Results);
        }
    }

    // Hands each row's result to its unit; a row that failed alone (or a job without results) fails its unit's request.
    private static async Task EachRowAsync(JobResult result, IReadOnlyList<BatchUnit> units, Func<int, BatchUnit, Task> complete)
    {
        var failed = result.FailedRows.ToDictionary(f => f.Index, f => f.Error);
        for (var i = 0; i < units.Count; i++)
        {
            if (failed.TryGetValue(i, out var error) || result.Results is null)
            {
                units[i].Request.Fail(new BatchError("row_failed", $"the request failed on every device that tried it: {error ?? "no result"}"));
                continue;
            }

            await complete(i, units[i]);
        }
    }

    // The job's result, or null when the job's input was refused as a whole (each unit's request failed with why).
    private async Task<JobResult?> RunAsync(object rows, IReadOnlyList<BatchUnit> units, CancellationToken cancellation)
    {
        try
        {
            return await client.RunAsync(rows, _options, cancellation: cancellation);
        }
        catch (InvalidInputException e)
        {
            foreach (var unit in units)
            {
                unit.Request.Fail(new BatchError("invalid_request", e.Message));
            }

            return null;
        }
        finally
        {
            RowOwnership.Dispose(rows);
        }
    }

    private static async IAsyncEnumerable<SequenceDelta> Renumbered(IAsyncEnumerable<SequenceDelta> deltas)
    {
        await foreach (var delta in deltas)
        {
            yield return delta with { Choice = 0 };
        }
    }

    // A sequence already generated, given to SequenceRunner as one update: stop strings and text come out as di serve's.
    private sealed class Finished(IReadOnlyList<GeneratedToken> tokens, FinishReason finish) : IGenerationEngine
    {
        public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
        {
            await Task.CompletedTask;
            yield return new GenerationUpdate(tokens, finish);
        }
    }
}
