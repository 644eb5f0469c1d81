using System.Diagnostics;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Models;

namespace DistributedInference.Actors.Replica;

/// <summary>Every result of a job in input order (null for an empty input; the caller owns it), and where the time went.</summary>
public sealed record JobResult(object? Results, JobStatistics Statistics)
{
    /// <summary>Rows that failed alone (<see cref="RowsFailed"/>); their places in <see cref="Results"/> hold blanks.</summary>
    public IReadOnlyList<RowFailure> FailedRows { get; init; } = [];
}

/// <summary>How far a job is: rows with results of all rows.</summary>
public readonly record struct JobProgress(int RowsDone, int RowsTotal);

/// <summary>
/// Submits replica jobs to a splitter from ordinary async code: all results at once (<see cref="RunAsync"/>) or as
/// batches finish (<see cref="StreamAsync"/>). A job that fails because of its input throws
/// <see cref="InvalidInputException"/>; any other failure <see cref="JobFailedException"/>. On a node with a data plane
/// (a cluster node or client) the input never rides in the submission: the job's home asks for it and it goes by the data
/// plane, however large. A submission that nothing answers within <c>distributed-inference.submit-timeout</c> (default
/// 2 min) fails with <see cref="JobFailedException"/> naming that setting. Ownership: the caller keeps its input (the
/// job is sent new handles of it, <see cref="RowBatch.Handles"/>) and owns every result it is handed.
/// </summary>
public sealed class ReplicaClient
{
    // Until the job's home first answers, the submission is sent again after each of these waits (then every last one):
    // a submission lost with a node that went away reaches the job's new home. Sending it again is harmless: a
    // coordinator that already has the job only re-attaches the caller (same job id).
    private static readonly TimeSpan[] ResendAfter = [TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(30)];

    // How long a cancelled job's caller waits for the job to confirm it stopped; then it stops waiting, and its reply
    // actor stops (a coordinator watching it cancels the job then).
    private static readonly TimeSpan CancelWait = TimeSpan.FromSeconds(1);

    private readonly IActorRefFactory _system;
    private readonly Func<CancellationToken, Task<IActorRef>> _splitter;

    public ReplicaClient(IActorRefFactory system, IActorRef splitter)
        : this(system, _ => Task.FromResult(splitter))
    {
    }

    /// <param name="system">Where the client's reply actors live.</param>
    /// <param name="splitter">Finds the splitter when the first job is submitted (hosting registers it at start-up).</param>
    public ReplicaClient(IActorRefFactory system, Func<CancellationToken, Task<IActorRef>> splitter)
    {
        _system = system;
        _splitter = splitter;
    }

    /// <summary>
    /// Whether <see cref="RunAsync"/> survives the loss of the actor running the job (its coordinator's node went away,
    /// say): the job's results are then streamed to this client, which keeps every row it received and submits only the
    /// rows it lacks again, under the same job id, to wherever the job's home is now (for the job shard region: a
    /// coordinator on a surviving control node), at most <see cref="MaxResubmissions"/> times. Rows are matched by
    /// their index and a row already received is never taken twice: at-least-once compute, exactly-once output.
    /// Off: the loss fails the job with <see cref="JobFailedException"/>.
    /// </summary>
    public bool ResubmitOnLoss { get; init; }

    /// <summary>How many times <see cref="ResubmitOnLoss"/> submits the missing rows again before the job fails.</summary>
    public int MaxResubmissions { get; init; } = 3;

    /// <summary>
    /// Told, one line, when <see cref="ResubmitOnLoss"/> submits rows again (where the job's coordinator was, how many rows
    /// go again, how many were kept); null: the line goes to the actor system's log as a warning.
    /// </summary>
    public Action<string>? OnResubmit { get; init; }

    /// <summary>
    /// Told, one line, when the job's home accepts the job and hands its batches out (rows, batches, devices and, with
    /// <see cref="ResubmitOnLoss"/>, the node that coordinates it): the job is under way. Null: nothing is told.
    /// </summary>
    public Action<string>? OnAccepted { get; init; }

    public async Task<JobResult> RunAsync(object input, JobOptions? options = null, IProgress<JobProgress>? progress = null, CancellationToken cancellation = default)
    {
        var payload = RowBatch.FromInput(input);
        if (ResubmitOnLoss && CountOrNull(payload) is { } rows)
        {
            return await RunResubmitting(payload, rows, options, progress, cancellation);
        }

        JobResult? result = null;
        var jobId = NewJobId();
        await foreach (var message in Messages(jobId, payload, options, streamResults: false, resend: false, cancellation))
        {
            switch (message)
            {
                case JobAccepted accepted:
                    OnAccepted?.Invoke(Accepted(jobId, accepted, coordinator: null));
                    progress?.Report(new JobProgress(0, accepted.Rows));
                    break;
                case RowsCompleted done:
                    progress?.Report(new JobProgress(done.RowsDone, done.RowsTotal));
                    break;
                case JobCompleted completed:
                    result = new JobResult(completed.Results?.Value, completed.Statistics) { FailedRows = completed.FailedRows };
                    break;
                case AnswererLost lost:
                    throw Lost(jobId, lost);
            }
        }

        return result!;
    }

    /// <summary>Results of rows as their batches finish (not in input order; each carries its row range).</summary>
    public async IAsyncEnumerable<RowsCompleted> StreamAsync(object input, JobOptions? options = null, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var jobId = NewJobId();
        await foreach (var message in Messages(jobId, RowBatch.FromInput(input), options, streamResults: true, resend: false, cancellation))
        {
            switch (message)
            {
                case RowsCompleted rows:
                    yield return rows;
                    break;
                case JobCompleted completed:
                    // A streaming caller had every row already (as its own copies): the joined results are nobody's.
                    completed.Results?.Dispose();
                    break;
                case AnswererLost lost:
                    throw Lost(jobId, lost);
            }
        }
    }

    private static string NewJobId() => Guid.NewGuid().ToString("N");

    private static string Accepted(string jobId, JobAccepted accepted, Address? coordinator) =>
        $"job {jobId}: accepted, {accepted.Rows} row(s) in {accepted.Batches} batch(es) on {accepted.Devices} device(s){(coordinator is null ? string.Empty : $", coordinated at {coordinator}")}";

    private static JobFailedException Lost(string jobId, AnswererLost lost) =>
        new($"job {jobId}: the actor running it at {lost.Node} stopped before the job ended; submit it again");

    private static int? CountOrNull(RowBatch input)
    {
        try
        {
            return input.Count;
        }
        catch (InvalidInputException)
        {
            // The job itself says what is wrong with its input.
            return null;
        }
    }

    // Attempt 0 submits every row; each later one only the rows not received yet, as one input of those rows in order
    // (the kept ranges map its row indices back to the job's). A lost coordinator's late answers go to a bridge that is gone.
    private async Task<JobResult> RunResubmitting(RowBatch input, int total, JobOptions? options, IProgress<JobProgress>? progress, CancellationToken cancellation)
    {
        var jobId = NewJobId();
        var log = (_system as ActorSystem ?? (_system as IActorContext)?.System) is { } system ? Logging.GetLogger(system, typeof(ReplicaClient)) : null;
        var received = new RowAssembler(total);
        var clock = Stopwatch.StartNew();
        var resent = 0;
        Address? coordinator = null;
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                var missing = received.Missing();
                using var again = attempt == 0 ? null : Missing(input, missing);
                var part = again?.Rows ?? input;
                JobStatistics? statistics = null;
                AnswererLost? lost = null;
                await foreach (var message in Messages(jobId, part, options, streamResults: true, resend: true, cancellation))
                {
                    switch (message)
                    {
                        case AnswererFound found:
                            coordinator = found.Node;
                            log?.Info("job {0}: coordinated at {1}", jobId, found.Node);
                            break;
                        case JobAccepted accepted when attempt == 0:
                            OnAccepted?.Invoke(Accepted(jobId, accepted, coordinator));
                            progress?.Report(new JobProgress(0, accepted.Rows));
                            break;
                        case RowsCompleted rows:
                            Receive(received, missing, rows);
                            progress?.Report(new JobProgress(received.Done, total));
                            break;
                        case RowsFailed failed:
                            foreach (var row in failed.Rows)
                            {
                                received.Fail(JobRow(missing, row), failed.Error);
                            }

                            progress?.Report(new JobProgress(received.Done, total));
                            break;
                        case JobCompleted completed:
                            // Every row came streamed; the job's own copy of them all is not needed.
                            if (completed.Results is { } all)
                            {
                                RowOwnership.DisposeViews(all.Value);
                            }

                            statistics = completed.Statistics;
                            break;
                        case AnswererLost gone:
                            lost = gone;
                            break;
                    }
                }

                if (lost is not null)
                {
                    if (attempt >= MaxResubmissions)
                    {
                        throw new JobFailedException($"job {jobId}: the actor running it at {lost.Node} stopped before the job ended, and the job was submitted again {attempt} time(s) already");
                    }

                    var left = total - received.Done;
                    var line = $"job {jobId}: its coordinator at {lost.Node} stopped before the job ended; submitting the {left} row(s) without results again ({received.Done} of {total} kept)";
                    if (OnResubmit is { } notice)
                    {
                        notice(line);
                    }
                    else
                    {
                        log?.Warning(line);
                    }

                    resent += left;
                    continue;
                }

                if (received.Done != total)
                {
                    throw new JobFailedException($"job {jobId} ended with results for {received.Done} of {total} rows");
                }

                var stats = statistics ?? new JobStatistics(TimeSpan.Zero, new Dictionary<string, DeviceShare>(), 0);
                var failures = received.Failures.Select(f => new RowFailure(f.Row, f.Error)).ToList();
                return new JobResult(received.Join()?.Value, stats with { Elapsed = clock.Elapsed, ResentBatches = stats.ResentBatches + resent }) { FailedRows = failures };
            }
        }
        finally
        {
            // Rows of a job that ends without its results (failed, cancelled) are nobody's.
            received.Dispose();
        }
    }

    // Rows [Start, Start + Count) of a submitted part, whose row i is row i of `part` laid end to end: each run that falls
    // in one range of the part goes to the assembler at its row of the whole job (a row already there is not taken again).
    private static void Receive(RowAssembler received, IReadOnlyList<(int Start, int Count)> part, RowsCompleted rows)
    {
        if (rows.Results is not { } results)
        {
            return;
        }

        var offset = 0;
        foreach (var range in part)
        {
            var from = Math.Max(rows.Start, offset);
            var to = Math.Min(rows.Start + rows.Count, offset + range.Count);
            if (from < to)
            {
                received.Add(range.Start + (from - offset), results.Slice(from - rows.Start, to - from));
            }

            offset += range.Count;
        }

        results.DisposeViews();
    }

    // The row of the whole job that row `row` of a part laid end to end is.
    private static int JobRow(IReadOnlyList<(int Start, int Count)> part, int row)
    {
        var offset = 0;
        foreach (var range in part)
        {
            if (row < offset + range.Count)
            {
                return range.Start + (row - offset);
            }

            offset += range.Count;
        }

        throw new ArgumentOutOfRangeException(nameof(row), $"row {row} is beyond the part's {offset} rows");
    }

    // The rows of `input` in `ranges`, joined (new tensors; a list's items shared), released with DisposeViews.
    private static JoinedRows Missing(RowBatch input, IReadOnlyList<(int Start, int Count)> ranges)
    {
        var slices = ranges.Select(range => input.Slice(range.Start, range.Count)).ToList();
        var joined = RowBatch.Concat(slices);
        slices.ForEach(slice => RowOwnership.DisposeViews(slice.Value));
        return new JoinedRows(joined);
    }

    private sealed record JoinedRows(RowBatch Rows) : IDisposable
    {
        public void Dispose() => RowOwnership.DisposeViews(Rows.Value);
    }

    // Where this node has a data plane (a cluster node or client), the input is never in the submission: the job's home
    // (a coordinator, or a splitter's job) asks for it (FetchJobInput) and it goes by the data plane, however large.
    // Every submission that no job home answers within distributed-inference.submit-timeout fails the call with
    // JobFailedException; resend: until the first answer, the submission is also sent again now and then.
    // `input` stays the caller's: each submission, and each answer to FetchJobInput, carries new handles of it.
    private async IAsyncEnumerable<object> Messages(string jobId, RowBatch input, JobOptions? options, bool streamResults, bool resend, [EnumeratorCancellation] CancellationToken cancellation)
    {
        // Cancelled before it starts: nothing is submitted (the job would otherwise run, and a quick one return its results).
        cancellation.ThrowIfCancellationRequested();
        var splitter = await _splitter(cancellation);
        var system = _system as ActorSystem ?? (_system as IActorContext)?.System;
        var settings = system is null ? null : Kernel.Settings.DistributedInferenceSettings.Get(system);
        var jobTimeout = settings?.JobTimeout ?? TimeSpan.FromMinutes(30);
        var dataPlane = system is null ? null : Kernel.Transport.TensorDataPlane.For(system);
        options ??= settings is null ? new JobOptions() : JobOptions.From(settings);
        var byDataPlane = dataPlane is not null;
        var submitTimeout = settings?.SubmitTimeout ?? TimeSpan.FromMinutes(2);
        var policy = new RequestPolicy
        {
            FirstAnswerWithin = submitTimeout,
            ResendAfter = resend ? ResendAfter : [],
            Deadline = jobTimeout,
            CancelMessage = new CancelJob(jobId),
            CancelWait = CancelWait,
            Watch = RequestWatch.FirstAnswerer,
            AnnounceAnswerer = true,
        };
        // The job's span on this side (a child of the caller's, a served request's for one): coordinator and devices continue it.
        using var span = Kernel.Telemetry.Instrumentation.Source.StartActivity("di.job", ActivityKind.Client);
        span?.SetTag("di.job.id", jobId);
        span?.SetTag("di.job.rows", input.Count);
        SubmitJob Submission(IActorRef replyTo) => new(jobId, byDataPlane ? RowBatch.From(Array.Empty<object>()) : input.Handles(), options, replyTo, streamResults, byDataPlane, span?.Id);
        var clock = Stopwatch.StartNew();
        await using var request = Request.Start(_system, splitter, Submission, policy, cancellation);
        await foreach (var message in request.ReadAllAsync(CancellationToken.None))
        {
            switch (message)
            {
                case FetchJobInput fetch:
                    // The job's home wants the input: as a bulk message to its node (new handles; the input stays this caller's).
                    Kernel.Transport.Transport.Send(system!, fetch.ReplyTo, new JobInput(jobId, input.Handles()), request.Actor);
                    break;
                case JobFailed failed when cancellation.IsCancellationRequested:
                    throw new OperationCanceledException($"job {jobId} cancelled: {failed.Reason}", cancellation);
                case RequestCancelled:
                    throw new OperationCanceledException($"job {jobId} cancelled", cancellation);
                case NoAnswer:
                    throw new JobFailedException($"job {jobId}: nothing acknowledged the submission (no job coordinator or splitter answered) within {submitTimeout.TotalSeconds:F0} s (distributed-inference.submit-timeout)");
                case DeadlinePassed:
                    throw new JobFailedException($"job {jobId} did not finish within {jobTimeout} (distributed-inference.job-timeout)");
                case JobFailed when clock.Elapsed >= jobTimeout:
                    throw new JobFailedException($"job {jobId} did not finish within {jobTimeout} (distributed-inference.job-timeout)");
                case JobFailed { InputError: true } failed:
                    throw new InvalidInputException(failed.Reason);
                case JobFailed failed:
                    throw new JobFailedException(failed.Reason);
                case JobCompleted or AnswererLost:
                    yield return message;
                    yield break;
                default:
                    yield return message;
                    break;
            }
        }
    }
}
