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
/// job is sent new handles of it, <see cref="RowPayload.Handles"/>) and owns every result it is handed.
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
        var payload = RowPayload.FromInput(input);
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
        await foreach (var message in Messages(jobId, RowPayload.FromInput(input), options, streamResults: true, resend: false, cancellation))
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

    private static int? CountOrNull(RowPayload input)
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
    private async Task<JobResult> RunResubmitting(RowPayload input, int total, JobOptions? options, IProgress<JobProgress>? progress, CancellationToken cancellation)
    {
        var jobId = NewJobId();
        var log = (_system as ActorSystem ?? (_system as IActorContext)?.System) is { } system ? Logging.GetLogger(system, typeof(ReplicaClient)) : null;
        var received = new ReceivedRows(total);
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
                            received.Add(missing, rows);
                            progress?.Report(new JobProgress(received.Done, total));
                            break;
                        case RowsFailed failed:
                            received.Fail(missing, failed);
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
                return new JobResult(received.Join(), stats with { Elapsed = clock.Elapsed, ResentBatches = stats.ResentBatches + resent }) { FailedRows = received.Failures };
            }
        }
        finally
        {
            received.Dispose();
        }
    }

    // The rows of `input` in `ranges`, joined (new tensors; a list's items shared), released with DisposeViews.
    private static JoinedRows Missing(RowPayload input, List<(int Start, int Count)> ranges)
    {
        var slices = ranges.Select(range => input.Slice(range.Start, range.Count)).ToList();
        var joined = RowPayload.Concat(slices);
        slices.ForEach(slice => RowOwnership.DisposeViews(slice.Value));
        return new JoinedRows(joined);
    }

    private sealed record JoinedRows(RowPayload Rows) : IDisposable
    {
        public void Dispose() => RowOwnership.DisposeViews(Rows.Value);
    }

    // Where this node has a data plane (a cluster node or client), the input is never in the submission: the job's home
    // (a coordinator, or a splitter's job) asks for it (FetchJobInput) and it goes by the data plane, however large.
    // Every submission that no job home answers within distributed-inference.submit-timeout fails the call with
    // JobFailedException; resend: until the first answer, the submission is also sent again now and then.
    // `input` stays the caller's: each submission, and each answer to FetchJobInput, carries new handles of it.
    private async IAsyncEnumerable<object> Messages(string jobId, RowPayload input, JobOptions? options, bool streamResults, bool resend, [EnumeratorCancellation] CancellationToken cancellation)
    {
        // Cancelled before it starts: nothing is submitted (the job would otherwise run, and a quick one return its results).
        cancellation.ThrowIfCancellationRequested();
        var splitter = await _splitter(cancellation);
        var system = _system as ActorSystem ?? (_system as IActorContext)?.System;
        var settings = system is null ? null : Kernel.Settings.DistributedInferenceSettings.Get(system);
        var jobTimeout = settings?.JobTimeout ?? TimeSpan.FromMinutes(30);
        var (bridge, reader) = ChannelBridge.Open(_system, watchFirstSender: true, announceAnswerer: true);
        using var timeout = new CancellationTokenSource(jobTimeout);
        using var cancel = cancellation.Register(() => splitter.Tell(new CancelJob(jobId)));
        using var expire = timeout.Token.Register(() => splitter.Tell(new CancelJob(jobId)));
        try
        {
            var dataPlane = system is null ? null : Kernel.Transport.TensorDataPlane.For(system);
            options ??= settings is null ? new JobOptions() : JobOptions.From(settings);
            var byDataPlane = dataPlane is not null;
            SubmitJob Submission() => new(jobId, byDataPlane ? RowPayload.From(Array.Empty<object>()) : input.Handles(), options, bridge, streamResults, byDataPlane);
            var submitTimeout = settings?.SubmitTimeout ?? TimeSpan.FromMinutes(2);
            var submitted = Stopwatch.StartNew();
            splitter.Tell(Submission());
            var answered = false;
            var resends = 0;
            var next = reader.ReadAsync(CancellationToken.None).AsTask();
            var givenUp = Task.Delay(Timeout.Infinite, cancellation).ContinueWith(_ => Task.Delay(CancelWait), TaskScheduler.Default).Unwrap();
            while (true)
            {
                var left = submitTimeout - submitted.Elapsed;
                var resendAfter = ResendAfter[Math.Min(resends, ResendAfter.Length - 1)];
                left = left > TimeSpan.Zero ? left : TimeSpan.Zero;
                var wait = answered ? Timeout.InfiniteTimeSpan : resend && resendAfter < left ? resendAfter : left;
                var woken = await Task.WhenAny(next, givenUp, Task.Delay(wait, CancellationToken.None));
                if (woken == givenUp)
                {
                    throw new OperationCanceledException($"job {jobId} cancelled", cancellation);
                }

                if (woken != next)
                {
                    if (!resend || submitted.Elapsed >= submitTimeout)
                    {
                        throw new JobFailedException($"job {jobId}: nothing acknowledged the submission (no job coordinator or splitter answered) within {submitTimeout.TotalSeconds:F0} s (distributed-inference.submit-timeout)");
                    }

                    resends++;
                    splitter.Tell(Submission());
                    continue;
                }

                var message = await next;
                answered = true;
                switch (message)
                {
                    case FetchJobInput fetch:
                        // The coordinator wants the input: by the data plane to its node (new handles; the input stays this caller's).
                        Kernel.Transport.Transport.Send(system!, fetch.ReplyTo, new JobInput(jobId, input.Handles()), bridge);
                        break;
                    case JobFailed failed when cancellation.IsCancellationRequested:
                        throw new OperationCanceledException($"job {jobId} cancelled: {failed.Reason}", cancellation);
                    case JobFailed when timeout.IsCancellationRequested:
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

                next = reader.ReadAsync(CancellationToken.None).AsTask();
            }
        }
        finally
        {
            bridge.Tell(PoisonPill.Instance);
        }
    }

    // The results of a job's rows as they come, by row index of the whole job; a row already here is not taken again.
    private sealed class ReceivedRows(int total) : IDisposable
    {
        private readonly bool[] _done = new bool[total];
        private readonly SortedDictionary<int, object> _pieces = [];
        private readonly List<object> _messages = [];
        private readonly SortedDictionary<int, RowFailure> _failures = [];

        public int Done { get; private set; }

        // The ranges of rows without results, in order.
        public List<(int Start, int Count)> Missing()
        {
            var ranges = new List<(int Start, int Count)>();
            for (var row = 0; row < total; row++)
            {
                if (!_done[row])
                {
                    var start = row;
                    while (row < total && !_done[row])
                    {
                        row++;
                    }

                    ranges.Add((start, row - start));
                }
            }

            return ranges;
        }

        // Rows [Start, Start + Count) of the submitted part, whose row i is row i of `part` laid end to end.
        public void Add(List<(int Start, int Count)> part, RowsCompleted rows)
        {
            if (rows.Results is null || rows.Count == 0)
            {
                return;
            }

            var results = rows.Results.Value;
            _messages.Add(results);
            var offset = 0;
            foreach (var range in part)
            {
                var from = Math.Max(rows.Start, offset);
                var to = Math.Min(rows.Start + rows.Count, offset + range.Count);
                for (var row = from; row < to;)
                {
                    var jobRow = range.Start + (row - offset);
                    if (_done[jobRow])
                    {
                        row++;
                        continue;
                    }

                    var run = 0;
                    while (row + run < to && !_done[jobRow + run])
                    {
                        _done[jobRow + run] = true;
                        run++;
                    }

                    _pieces[jobRow] = Rows.Slice(results, row - rows.Start, run);
                    Done += run;
                    row += run;
                }

                offset += range.Count;
            }
        }

        public IReadOnlyList<RowFailure> Failures => [.. _failures.Values];

        // Rows of the submitted part that failed alone: answered (never submitted again), blank in the joined result.
        public void Fail(List<(int Start, int Count)> part, RowsFailed failed)
        {
            foreach (var row in failed.Rows)
            {
                var offset = 0;
                foreach (var range in part)
                {
                    if (row < offset + range.Count)
                    {
                        var jobRow = range.Start + (row - offset);
                        if (!_done[jobRow])
                        {
                            _done[jobRow] = true;
                            _failures[jobRow] = new RowFailure(jobRow, failed.Error);
                            Done++;
                        }

                        break;
                    }

                    offset += range.Count;
                }
            }
        }

        public object? Join()
        {
            if (_pieces.Count == 0)
            {
                return null;
            }

            var like = _pieces.Values.First();
            foreach (var row in _failures.Keys)
            {
                _pieces[row] = Rows.Blank(like, 1);
            }

            return Rows.Concat(_pieces.Values.ToList());
        }

        public void Dispose()
        {
            foreach (var piece in _pieces.Values)
            {
                RowOwnership.DisposeViews(piece);
            }

            foreach (var message in _messages)
            {
                RowOwnership.DisposeViews(message);
            }
        }
    }
}
