using System.CommandLine;
using DistributedInference.Host.Cluster;
using DistributedInference.Host.Inference;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di infer</c>: run a model over inputs and write one result per input, in input order; on this machine's devices,
/// or with <c>--join host:port</c> on a running cluster's, joining it as a client for the job.
/// </summary>
public static class InferCommand
{
    public static Command Create()
    {
        var arguments = new InferArguments();
        var command = arguments.CreateCommand();
        command.SetAction(async (result, outer) =>
        {
            // Ctrl-C / SIGTERM: the job is cancelled (on the cluster too), nothing is written, exit 130 / 143 within seconds.
            using var signals = new TerminationSignals(outer);
            var cancellation = signals.Token;
            var exit = await UserErrors.Run(
            async () =>
            {
                var options = arguments.Read(result);
                var (stdout, stderr) = (result.InvocationConfiguration.Output, result.InvocationConfiguration.Error);
                if (arguments.Warning(result) is { } warning)
                {
                    await stderr.WriteLineAsync(warning);
                }

                if (TextToImageJob.IsTextToImage(options))
                {
                    await RunTextToImage(options, stderr, cancellation);
                    return 0;
                }

                var job = PreparedJob.From(options);
                job.Writer.CheckFinite(stderr, options.Strict);
                if (options.OnCluster)
                {
                    var client = await ClusterInference.JoinAsClientAsync(options.ClusterSeeds!, configFile: null, options, cancellation: cancellation);
                    try
                    {
                        await ClusterInference.Run(client, job, options, nodes: null, stdout, stderr, cancellation);
                    }
                    finally
                    {
                        await ClusterInference.LeaveAsync(client);
                    }

                    return 0;
                }

                await (options.Mode == Mode.Pipeline
                    ? PipelineInference.Run(job, options, stdout, stderr, cancellation)
                    : ReplicaInference.Run(job, options, stdout, stderr, cancellation));
                return 0;
            },
            result.InvocationConfiguration.Error);
            signals.ExitIfSignalled();
            return exit;
        });
        return command;
    }

    private static async Task RunTextToImage(InferOptions options, TextWriter stderr, CancellationToken cancellation)
    {
        var job = TextToImageJob.Prepare(options);
        if (!options.OnCluster)
        {
            await TextToImageInference.Run(job, options, stderr, cancellation);
            return;
        }

        var client = await ClusterInference.JoinAsClientAsync(options.ClusterSeeds!, configFile: null, options, cancellation: cancellation);
        try
        {
            await TextToImageInference.RunOnCluster(client, job, options, nodes: null, stderr, cancellation);
        }
        finally
        {
            await ClusterInference.LeaveAsync(client);
        }
    }
}
