using System.Runtime.CompilerServices;
using Akka.Actor;
using DistributedInference.Models;

namespace DistributedInference.Actors.Replica;

/// <summary>Every result of a job in input order (null for an empty input), and where the time went.</summary>
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
/// <see cref="InvalidInputException"/>; any other failure <see cref="JobFailedException"/>.
/// </summary>
public sealed class ReplicaClient
{
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

    public async Task<JobResult> RunAsync(object input, JobOptions? options = null, IProgress<JobProgress>? progress = null, CancellationToken cancellation = default)
    {
        JobResult? result = null;
        await foreach (var message in Messages(input, options, streamResults: false, cancellation))
        {
            switch (message)
            {
                case JobAccepted accepted:
                    progress?.Report(new JobProgress(0, accepted.Rows));
                    break;
                case RowsCompleted rows:
                    progress?.Report(new JobProgress(rows.RowsDone, rows.RowsTotal));
                    break;
                case JobCompleted completed:
                    result = new JobResult(completed.Results, completed.Statistics) { FailedRows = completed.FailedRows };
                    break;
            }
        }

        return result!;
    }

    /// <summary>Results of rows as their batches finish (not in input order; each carries its row range).</summary>
    public async IAsyncEnumerable<RowsCompleted> StreamAsync(object input, JobOptions? options = null, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        await foreach (var message in Messages(input, options, streamResults: true, cancellation))
        {
            if (message is RowsCompleted rows)
            {
                yield return rows;
            }
            else if (message is JobCompleted completed)
            {
                // A streaming caller had every row already (as its own copies): the joined results are nobody's.
                Splitting.RowOwnership.Dispose(completed.Results);
            }
        }
    }

    private async IAsyncEnumerable<object> Messages(object input, JobOptions? options, bool streamResults, [EnumeratorCancellation] CancellationToken cancellation)
    {
        var jobId = Guid.NewGuid().ToString("N");
        var splitter = await _splitter(cancellation);
        var system = _system as ActorSystem ?? (_system as IActorContext)?.System;
        var settings = system is null ? null : Configuration.DistributedInferenceSettings.From(system.Settings.Config);
        var jobTimeout = settings?.JobTimeout ?? TimeSpan.FromMinutes(30);
        var (bridge, reader) = ChannelBridge.Open(_system, watchFirstSender: true);
        using var timeout = new CancellationTokenSource(jobTimeout);
        using var cancel = cancellation.Register(() => splitter.Tell(new CancelJob(jobId)));
        using var expire = timeout.Token.Register(() => splitter.Tell(new CancelJob(jobId)));
        try
        {
            var dataPlane = system is null ? null : DataPlane.TensorDataPlane.For(system)?.Endpoint;
            options ??= settings is null ? new JobOptions() : settings.JobOptions();
            splitter.Tell(new SubmitJob(jobId, input, options, bridge, streamResults, dataPlane));
            while (true)
            {
                var message = await reader.ReadAsync(CancellationToken.None);
                switch (message)
                {
                    case JobFailed failed when cancellation.IsCancellationRequested:
                        throw new OperationCanceledException($"job {jobId} cancelled: {failed.Reason}", cancellation);
                    case JobFailed when timeout.IsCancellationRequested:
                        throw new JobFailedException($"job {jobId} did not finish within {jobTimeout} (distributed-inference.job-timeout)");
                    case AnswererLost lost:
                        throw new JobFailedException($"job {jobId}: the actor running it at {lost.Node} stopped before the job ended; submit it again");
                    case JobFailed { InputError: true } failed:
                        throw new InvalidInputException(failed.Reason);
                    case JobFailed failed:
                        throw new JobFailedException(failed.Reason);
                    case JobCompleted:
                        yield return message;
                        yield break;
                    default:
                        yield return message;
                        break;
                }
            }
        }
        finally
        {
            bridge.Tell(PoisonPill.Instance);
        }
    }
}
