using System.CommandLine;
using DistributedInference.Host.Inference;

namespace DistributedInference.Host.CommandLine;

/// <summary><c>di infer</c>: run a model over inputs and write one result per input, in input order.</summary>
public static class InferCommand
{
    public static Command Create()
    {
        var arguments = new InferArguments();
        var command = arguments.CreateCommand();
        command.SetAction((result, cancellation) => UserErrors.Run(
            async () =>
            {
                var options = arguments.Read(result);
                var job = PreparedJob.From(options);
                var (stdout, stderr) = (result.InvocationConfiguration.Output, result.InvocationConfiguration.Error);
                await (options.Mode == "pipeline"
                    ? PipelineInference.Run(job, options, stdout, stderr, cancellation)
                    : ReplicaInference.Run(job, options, stdout, stderr, cancellation));
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }
}
