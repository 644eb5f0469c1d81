using Akka.Actor;
using DistributedInference.Actors.Replica;
using DistributedInference.Host.CommandLine;
using DistributedInference.Host.Inference;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// <c>di launch --num-processes N -- infer ...</c>: start N node processes on 127.0.0.1 (each serving the job's model
/// on its devices: whole replicas in replica mode, pipeline stages in pipeline mode), join them as a client without
/// devices, run the job across all of them, write the output, and stop the nodes: the client has them leave, younger nodes first, and waits for their
/// processes to exit before it leaves itself.
/// </summary>
public static class LaunchedInference
{
    public static async Task Run(LaunchOptions launch, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        if (launch.Command.Count == 0 || launch.Command[0] != "infer")
        {
            throw new InvalidInputException("give the job after --: di launch --num-processes N -- infer ...");
        }

        var arguments = new InferArguments();
        var parsed = arguments.CreateCommand().Parse(launch.Command.Skip(1).ToList());
        if (parsed.Errors.Count > 0)
        {
            throw new InvalidInputException($"infer: {parsed.Errors[0].Message}");
        }

        var options = arguments.Read(parsed);
        if (options.OnCluster)
        {
            throw new InvalidInputException("di launch starts its own cluster: give the job without --join");
        }

        if (options.MaxMemory is not null)
        {
            throw new InvalidInputException("--max-memory plans a pipeline on this machine's devices; under di launch each node's reported free memory bounds its stages");
        }

        var nodeDevices = launch.DevicesPerProcess ?? options.Devices;
        var image = TextToImageJob.IsTextToImage(options) ? TextToImageJob.Prepare(options with { Devices = nodeDevices }) : null;
        var job = image is null ? PreparedJob.From(options with { Devices = nodeDevices }) : null;
        job?.Writer.CheckFinite(stderr, options.Strict);
        var nodeArguments = new List<string>
        {
            "--devices", nodeDevices, "--model", options.Model, "--task", options.Task.Name(), "--dtype", options.DType.Name(),
            "--max-new-tokens", options.MaxNewTokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--seed", options.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--serve", options.Mode == Mode.Pipeline ? NodeOptions.ServePipeline : NodeOptions.ServeReplica,
        };
        if (job is not null)
        {
            nodeArguments.AddRange(CommandLine.GenerationArguments.ToArguments(job.Generation));
        }
        if (launch.ConfigFile is not null)
        {
            nodeArguments.AddRange(["--config-file", launch.ConfigFile]);
        }

        if (options.LibTorch is not null)
        {
            nodeArguments.AddRange(["--libtorch", options.LibTorch]);
        }

        if (launch.Verbose)
        {
            nodeArguments.Add(DiCommandLine.VerboseOption);
        }

        // A secret of this launch only, handed to the nodes in their environment (never on their command line).
        var secret = Actors.Kernel.Membership.ClusterSecurity.NewSecret();
        // The node processes share this machine's cores: their CPU devices divide them, as in one process (CpuThreads).
        var cpuThreads = CpuThreads.PerProcess(launch.NumProcesses, DeviceName.ParseList(nodeDevices));
        if (cpuThreads is { } threads)
        {
            await stderr.WriteLineAsync($"di launch: {threads} CPU thread(s) per device (OMP_NUM_THREADS, {Environment.ProcessorCount} core(s) shared by {launch.NumProcesses} process(es))");
        }

        await using var nodes = await LocalCluster.StartAsync(launch.NumProcesses, _ => nodeArguments, stderr, cancellation, forwardStderr: launch.Verbose, secret: secret, cpuThreads: cpuThreads);
        await stderr.WriteLineAsync($"di launch: {launch.NumProcesses} node process(es) up");
        var client = await ClusterInference.JoinAsClientAsync([nodes.Seed], launch.ConfigFile, options, secret, cancellation);
        try
        {
            await (image is not null
                ? TextToImageInference.RunOnCluster(client, image, options, launch.NumProcesses, stderr, cancellation)
                : ClusterInference.Run(client, job!, options, launch.NumProcesses, stdout, stderr, cancellation));
        }
        finally
        {
            if (cancellation.IsCancellationRequested)
            {
                // Ctrl-C / SIGTERM: the job is abandoned, and the nodes go at once rather than leave politely (seconds each).
                nodes.Kill();
            }
            else
            {
                // The client stays until the nodes are gone: a member that exits before it is removed holds up the gossip
                // every later leave waits for (SIGTERM to all at once took over 10 s).
                await nodes.LeaveAsync(client);
                await ClusterInference.LeaveAsync(client);
            }
        }
    }
}
