using System.Diagnostics.Metrics;
using DistributedInference.Actors.Kernel.Telemetry;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// What a replica job's retries cost, recorded where the job runs (its coordinator's node):
/// <c>di.job.rows.retried</c> (rows of a batch sent again after its device failed, stopped or did not answer in time,
/// split halves included) and <c>di.job.rows.failed</c> (rows reported failed once every attempt was spent).
/// </summary>
internal static class JobMetrics
{
    private static readonly Counter<long> RowsRetried = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "job.rows.retried", "{row}", "Rows of replica batches sent again after a device failed, stopped or timed out.");

    private static readonly Counter<long> RowsFailed = Instrumentation.Meter.CreateCounter<long>(
        Instrumentation.Prefix + "job.rows.failed", "{row}", "Rows of replica jobs reported failed after every attempt.");

    /// <summary>A batch of <paramref name="rows"/> rows goes out again (whole or as halves).</summary>
    public static void Retried(int rows) => RowsRetried.Add(rows);

    /// <summary>One row is reported failed.</summary>
    public static void Failed() => RowsFailed.Add(1);
}
