using System.Diagnostics;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;
using DistributedInference.Host.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Templates;

namespace DistributedInference.Host.Batch;

/// <summary>
/// <c>di batch</c>: answers every request of an OpenAI batch input file exactly once in the output file. The input is
/// checked in one pass (duplicate <c>custom_id</c>s refused before anything runs), the output opened to resume
/// (<see cref="BatchOutput"/>), then the input is read again as a stream: each line is checked as <c>di serve</c>
/// checks a request body (a line that cannot be run is answered with an error line at once), windows of
/// <see cref="BatchOptions.Window"/> requests are grouped by length and cut into replica jobs
/// (<see cref="BatchJobs"/>), at most <see cref="BatchOptions.JobsInFlight"/> at once, and each request's line is
/// appended when its last unit finishes (<see cref="BatchWriter"/>). Requests read but not yet written are bounded
/// (three windows), so memory does not grow with the file.
/// </summary>
public static class BatchRunner
{
    /// <exception cref="InvalidInputException">Bad options, a missing or duplicate-id input, an output that is not this batch's.</exception>
    /// <exception cref="JobFailedException">No device could run a job: what was answered stays in the output; run again to resume.</exception>
    /// <exception cref="OperationCanceledException">Cancelled: what was answered stays in the output; run again to resume.</exception>
    public static async Task<BatchSummary> RunAsync(BatchOptions options, TextWriter stderr, CancellationToken cancellation)
    {
        Check(options);
        var clock = Stopwatch.StartNew();
        var input = BatchInput.Scan(options.Input, options.MaxRequestBytes);
        ServedModel model;
        try
        {
            model = ServedModel.Load(options.Model, options.ServedModelName, options.ChatTemplate, options.Seed);
        }
        catch (TemplateException e)
        {
            throw new InvalidInputException(e.Message);
        }

        using var output = BatchOutput.Open(options.Output, input, options.Restart);
        var todo = output.Resumed == 0 ? input.Requests : input.Unanswered(output);
        if (!options.Quiet && (output.Resumed > 0 || output.CutBytes > 0))
        {
            await stderr.WriteLineAsync($"di batch: resuming {options.Output}: {output.Resumed:N0} answer(s) in it, {todo:N0} of {input.Requests:N0} request(s) left"
                + (output.CutBytes > 0 ? $"; a torn last line ({output.CutBytes} bytes) cut off" : string.Empty));
        }

        if (todo <= 0)
        {
            return new BatchSummary(options.Output, input.Requests, output.Resumed, 0, 0, 0, 0, clock.Elapsed.TotalSeconds);
        }

        if (options.Join is not { Count: > 0 })
        {
            CpuThreads.LeaveOneCore(DeviceName.ParseList(options.Devices));
        }

        await using var backend = await ServingBackend.StartAsync(model, options.Serving(), cancellation);
        await WhenServingAsync(backend, options, cancellation);
        var jobs = new BatchJobs(await backend.ClientAsync(cancellation), model, options.MaxBatchSize);
        if (!options.Quiet)
        {
            await stderr.WriteLineAsync($"di batch: {todo:N0} request(s) of {options.Input} with {model.Name} on {backend.Describe()}");
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        using var places = new SemaphoreSlim(options.Window * 3);
        using var jobSlots = new SemaphoreSlim(options.JobsInFlight);
        Exception? failure = null;
        void Stop(Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
            stop.Cancel();
        }

        var writer = new BatchWriter(output, options.Ordered, () => places.Release(), Stop);
        var running = new List<Task>();
        try
        {
            await using (BatchProgress.Start(stderr, writer, todo, options))
            {
                var window = new List<BatchPending>();
                long sequence = 0;
                foreach (var line in input.Lines())
                {
                    if (output.IsAnswered(line))
                    {
                        continue;
                    }

                    // Every request read is dispatched before the reader waits: answers held for --ordered behind requests
                    // not yet dispatched would otherwise keep the places the reader waits for.
                    if (!places.Wait(0))
                    {
                        await DispatchAsync(window, jobs, options, jobSlots, running, Stop, stop.Token);
                        window = [];
                        await places.WaitAsync(stop.Token);
                    }

                    if (Prepare(line, sequence++, model, options, writer) is { } pending)
                    {
                        window.Add(pending);
                    }

                    if (window.Count >= options.Window)
                    {
                        await DispatchAsync(window, jobs, options, jobSlots, running, Stop, stop.Token);
                        window = [];
                    }
                }

                await DispatchAsync(window, jobs, options, jobSlots, running, Stop, stop.Token);
                await Task.WhenAll(running);
            }
        }
        catch (OperationCanceledException) when (failure is not null)
        {
        }
        finally
        {
            await Task.WhenAll(running).ContinueWith(_ => { }, TaskScheduler.Default);
            try
            {
                await writer.CompleteAsync();
            }
            catch (Exception) when (failure is not null)
            {
            }
        }

        if (failure is not null)
        {
            throw failure is IOException or UnauthorizedAccessException ? failure : new JobFailedException($"{failure.Message} ({writer.Ok + writer.Failed:N0} request(s) answered in {options.Output}; run the same command again to go on)", failure);
        }

        stop.Token.ThrowIfCancellationRequested();
        return new BatchSummary(options.Output, input.Requests, output.Resumed, writer.Ok, writer.Failed, writer.PromptTokens, writer.CompletionTokens, clock.Elapsed.TotalSeconds);
    }

    private static void Check(BatchOptions options)
    {
        if (options.MaxBatchSize is < 1 or > 1 << 20 || options.Window is < 1 or > 1 << 20 || options.JobRows is < 1 or > 1 << 20
            || options.JobsInFlight is < 1 or > 1024 || options.MaxRequestBytes is < 1 or > 1L << 30)
        {
            throw new InvalidInputException("--max-batch-size, --window and --job-rows must be 1 to 1048576, --jobs-in-flight 1 to 1024, --max-request-bytes 1 to 1073741824");
        }

        if (string.IsNullOrWhiteSpace(options.Input) || string.IsNullOrWhiteSpace(options.Output))
        {
            throw new InvalidInputException("--input and --output must name files");
        }

        if (SameFile.Check(options.Input, options.Output) || Path.GetFullPath(options.Input) == Path.GetFullPath(options.Output))
        {
            throw new InvalidInputException("--output must not be the --input file");
        }

        if (options.JsonSummary is { } summary)
        {
            if (string.IsNullOrWhiteSpace(summary) || Directory.Exists(summary) || Path.GetFileName(Path.GetFullPath(summary)).Length == 0)
            {
                throw new InvalidInputException($"--json-summary '{summary}': give a file");
            }

            if (SameFile.Check(summary, options.Input) || SameFile.Check(summary, options.Output) || Path.GetFullPath(summary) == Path.GetFullPath(options.Output))
            {
                throw new InvalidInputException("--json-summary must not be the --input or --output file");
            }

            Inference.InputChecks.Writable("--json-summary", summary);
        }
    }

    private static async Task WhenServingAsync(ServingBackend backend, BatchOptions options, CancellationToken cancellation)
    {
        var wait = options.JoinTimeout ?? TimeSpan.FromSeconds(60);
        if (await Task.WhenAny(backend.WhenServing, Task.Delay(wait, cancellation)) != backend.WhenServing)
        {
            cancellation.ThrowIfCancellationRequested();
            throw new JobFailedException($"no device served the model within {wait.TotalSeconds:0} s: {backend.Unavailable}");
        }
    }

    // The request of a line, checked as di serve checks a body; a line that cannot run is answered at once (null).
    private static BatchPending? Prepare(BatchRequestLine line, long sequence, ServedModel model, BatchOptions options, BatchWriter writer)
    {
        if (line.Error is { } error)
        {
            writer.Write(sequence, line.CustomId, error);
            return null;
        }

        try
        {
            var body = line.Body!;
            if (body.String("model") is { } name && name != model.Name)
            {
                throw new ApiException(404, $"The batch runs the model `{model.Name}`, not `{name}`: leave 'model' out or name that one.", param: "model", code: "model_not_found");
            }

            // A body without a seed samples the same tokens on every run of the batch, resumed or not.
            var seed = (long)Seeds.Mix((ulong)options.Seed, (ulong)BatchInput.Key(line.CustomId!));
            PreparedGeneration? generation = null;
            PreparedEmbedding? embedding = null;
            PreparedImages? images = null;
            switch (line.Url)
            {
                case BatchRequestLine.Completions:
                    generation = model.Generates ? CompletionsEndpoint.Prepare(body, model, seed) : throw CompletionsEndpoint.NotSupported(model);
                    break;
                case BatchRequestLine.ChatCompletions:
                    generation = model.Generates ? ChatCompletionsEndpoint.Prepare(body, model, seed) : throw ChatCompletionsEndpoint.NotSupported(model);
                    break;
                case BatchRequestLine.ImageGenerations:
                    images = model.Draws ? PreparedImages.Prepare(body, model, seed) : throw ApiException.BadRequest($"The model `{model.Name}` does not support Images API (a Stable Diffusion pipeline does).", "model");
                    break;
                default:
                    embedding = model.Embeds ? EmbeddingsEndpoint.Prepare(body, model) : throw EmbeddingsEndpoint.NotSupported(model);
                    break;
            }

            if (generation is { Sampling.Stream: true })
            {
                throw ApiException.BadRequest("'stream' is not supported in a batch file: each request's response is written whole.", "stream");
            }

            return new BatchPending(sequence, line, generation, embedding, images, writer.Write);
        }
        catch (ApiException e)
        {
            var code = e.Code ?? (e.Status == 413 ? "context_length_exceeded" : "invalid_request");
            writer.Write(sequence, line.CustomId, new BatchError(code, e.Message, Param: e.Param));
            return null;
        }
    }

    private static async Task DispatchAsync(
        List<BatchPending> window, BatchJobs jobs, BatchOptions options, SemaphoreSlim jobSlots, List<Task> running, Action<Exception> fail, CancellationToken cancellation)
    {
        var units = window.SelectMany(p => Enumerable.Range(0, p.Units).Select(i => new BatchUnit(p, i))).ToList();
        if (options.GroupByLength)
        {
            units = units.OrderBy(u => u.Length.Tokens).ThenBy(u => u.Length.Budget).ToList();
        }

        running.RemoveAll(t => t.IsCompleted);
        foreach (var group in units.GroupBy(u => u.JobKey))
        {
            foreach (var chunk in group.Chunk(options.JobRows))
            {
                await jobSlots.WaitAsync(cancellation);
                running.Add(RunAsync(chunk, group.Key.Kind));
            }
        }

        async Task RunAsync(IReadOnlyList<BatchUnit> chunk, int kind)
        {
            try
            {
                await (kind switch
                {
                    0 => jobs.RunGenerationAsync(chunk, cancellation),
                    1 => jobs.RunEmbeddingAsync(chunk, cancellation),
                    _ => jobs.RunImagesAsync(chunk, PreparedImages.Folder(options.Output), cancellation),
                });
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                fail(e);
            }
            finally
            {
                jobSlots.Release();
            }
        }
    }
}
