using Akka.Actor;
using DistributedInference.Actors.Cluster;
using DistributedInference.Actors.Replica;
using DistributedInference.Host.CommandLine;
using DistributedInference.Host.Inference;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Cluster;

/// <summary>
/// <c>di launch --num-processes N -- infer ...</c>: start N node processes on 127.0.0.1 (each holding the job's model
/// on its devices), join them as a client without devices, wait until every device is registered, run the job in
/// replica mode across all of them, write the output, and stop the nodes.
/// </summary>
public static class LaunchedInference
{
    private static readonly TimeSpan DevicesTimeout = TimeSpan.FromMinutes(2);

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
        if (options.Mode != "replica")
        {
            throw new InvalidInputException("di launch runs replica mode; pipeline stages on several processes are not available yet");
        }

        var nodeDevices = launch.DevicesPerProcess ?? options.Devices;
        var perNode = DeviceName.ParseList(nodeDevices).Count;
        var job = PreparedJob.From(options with { Devices = nodeDevices });
        var nodeArguments = new List<string>
        {
            "--devices", nodeDevices, "--model", options.Model, "--task", options.Task, "--dtype", options.DType,
            "--max-new-tokens", options.MaxNewTokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--model-seed", options.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (launch.ConfigFile is not null)
        {
            nodeArguments.AddRange(["--config-file", launch.ConfigFile]);
        }

        if (options.LibTorch is not null)
        {
            nodeArguments.AddRange(["--libtorch", options.LibTorch]);
        }

        await using var nodes = await LocalCluster.StartAsync(launch.NumProcesses, _ => nodeArguments, stderr, cancellation);
        var client = ClusterNode.Start(new NodeOptions(
            "127.0.0.1", 0, [nodes.Seed], ["client"], "cpu", launch.ConfigFile, options.Model, options.Task, options.DType, options.MaxNewTokens, options.Seed, options.LibTorch));
        try
        {
            await ClusterNode.WhenUp(client, DevicesTimeout);
            var splitter = client.ActorOf(ReplicaSplitter.Props([]), ReplicaSplitter.ActorName);
            client.ActorOf(DeviceRegistry.Props(splitter), "device-registry");
            await WaitForDevices(splitter, launch.NumProcesses * perNode, cancellation);
            await stderr.WriteLineAsync($"di launch: {launch.NumProcesses} node(s), {launch.NumProcesses * perNode} device(s)");

            var rows = Models.Tasks.Gpt2Replica.Rows(job.Inputs.InputIds, job.Inputs.AttentionMask);
            var result = await ProgressBar.Track(
                stderr,
                $"{job.Task.Name()} on {launch.NumProcesses} node(s)",
                progress => new ReplicaClient(client, splitter).RunAsync(rows, new JobOptions(options.ApplyPadding, options.MaxBatchSize), progress, cancellation));
            job.Writer.Write(job.Task, job.Inputs, (Tensor)result.Results!, job.Source.Config, stdout);
        }
        finally
        {
            await CoordinatedShutdown.Get(client).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
        }
    }

    private static async Task WaitForDevices(IActorRef splitter, int expected, CancellationToken cancellation)
    {
        var deadline = DateTime.UtcNow + DevicesTimeout;
        while (true)
        {
            var devices = await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(10), cancellation);
            if (devices.Devices.Count >= expected)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new JobFailedException($"only {devices.Devices.Count} of {expected} devices registered within {DevicesTimeout}");
            }

            await Task.Delay(200, cancellation);
        }
    }
}
