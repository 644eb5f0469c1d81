using System.CommandLine;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Kernel.Discovery;
using DistributedInference.Host.Cluster;
using DistributedInference.Host.Telemetry;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di node</c>: join (or start) a cluster, offer this machine's devices, serve until stopped. SIGTERM leaves the
/// cluster gracefully (Akka's coordinated shutdown).
/// </summary>
public static class NodeCommand
{
    public static Command Create()
    {
        var host = new Option<string>("--host") { Description = "address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "port to listen on (0: any free port)", DefaultValueFactory = _ => 0 };
        var join = SharedOptions.Join("a node of the cluster to join (repeat for several); none: this node starts the cluster");
        var joinTimeout = SharedOptions.JoinTimeout();
        var secretFile = SharedOptions.SecretFile();
        var tlsCertificate = SharedOptions.TlsCertificate();
        var roles = new Option<string>("--roles") { Description = "comma-separated roles: device (offers its devices), control (hosts job coordinators)", DefaultValueFactory = _ => $"{DeviceManager.Role},{JobSharding.ControlRole}" };
        var devices = new Option<string>("--devices") { Description = "this node's devices, one device actor each", DefaultValueFactory = _ => "cpu" };
        var configFile = new Option<string?>("--config-file") { Description = "HOCON file over the defaults (di config default writes one)" };
        var model = new Option<string>("--model") { Description = "the model this node's devices hold (folder or built-in name)", DefaultValueFactory = _ => "gpt2" };
        var task = SharedOptions.Task("the task the devices' model is loaded for (jobs must ask for the same)", Models.Tasks.InferenceTask.Generate);
        var dtype = SharedOptions.DType("precision of the model on the devices (jobs must ask for the same)", Models.Runtime.Precision.Fp32);
        var maxNewTokens = new Option<int>("--max-new-tokens") { Description = "tokens generated per input (task generate)", DefaultValueFactory = _ => 20 };
        var seed = SharedOptions.Seed("seed of a built-in model's random weights (nodes and clients must agree)");
        var libtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch (a PyTorch install's torch/lib, CUDA included); also ${Models.Runtime.LibTorch.FolderVariable}" };
        var generation = new GenerationArguments();
        var continuous = new ContinuousBatchingArguments();
        var metricsPort = new Option<int?>("--metrics-port") { Description = "serve /metrics (Prometheus), /health/live and /health/ready over plain HTTP on --host and this port (0: any free port); none: off" };
        var serve = new Option<string>("--serve") { Description = "what the devices offer: replica (each device loads the whole model at start), pipeline (stages built on request), or both; requests: the model for di serve --join (per-request sampling)", DefaultValueFactory = _ => "replica,pipeline" };
        var discovery = new Option<string?>("--discovery") { Description = "find the cluster without --join (Akka Cluster Bootstrap): config (every node's --contact-point) or kubernetes (pods labelled app=SERVICE-NAME, found through the Kubernetes API)", HelpName = "config|kubernetes" };
        var contactPoints = new Option<string[]>("--contact-point") { Description = "with --discovery config: a node's management endpoint (repeat for every node, this one's included)", HelpName = "HOST:PORT", AllowMultipleArgumentsPerToken = false };
        var requiredContactPoints = new Option<int?>("--required-contact-points") { Description = "with --discovery: contact points that must answer before a new cluster is formed (default: all --contact-point; kubernetes: 2)", HelpName = "N" };
        var managementPort = new Option<int>("--management-port") { Description = "with --discovery: port of this node's Akka.Management endpoint on --host (bootstrap contact point)", DefaultValueFactory = _ => ClusterDiscovery.DefaultManagementPort };
        var serviceName = new Option<string>("--service-name") { Description = "with --discovery: the cluster's name in discovery (kubernetes: the pods' app label)", DefaultValueFactory = _ => ClusterDiscovery.DefaultServiceName };
        var command = new Command("node", "Join a cluster and offer this machine's devices until stopped.")
        {
            host, port, join, joinTimeout, secretFile, tlsCertificate, roles, devices, configFile, model, task, dtype, maxNewTokens, seed, libtorch, serve, metricsPort,
            discovery, contactPoints, requiredContactPoints, managementPort, serviceName,
        };
        foreach (var option in generation.Options.Concat(continuous.Options))
        {
            command.Options.Add(option);
        }

        command.SetAction((result, cancellation) => UserErrors.Run(
            async () =>
            {
                var options = new NodeOptions(
                    result.GetValue(host)!, result.GetValue(port), result.GetValue(join) ?? [],
                    result.GetValue(roles)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                    result.GetValue(devices)!, result.GetValue(configFile), result.GetValue(model)!, result.GetValue(task),
                    result.GetValue(dtype), result.GetValue(maxNewTokens), result.GetValue(seed), result.GetValue(libtorch),
                    result.GetValue(serve)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                    generation.Read(result, result.GetValue(maxNewTokens), result.GetValue(seed)),
                    SharedOptions.Seconds(result.GetValue(joinTimeout)),
                    ClusterSecret.Read(result.GetValue(secretFile)),
                    result.GetValue(tlsCertificate),
                    Discovery(result, discovery, contactPoints, requiredContactPoints, managementPort, serviceName),
                    continuous.Read(result));
                if (generation.IgnoredSamplingWarning(result) is { } warning)
                {
                    await result.InvocationConfiguration.Error.WriteLineAsync(warning);
                }

                // The operations endpoint first: a bad port is said before a model loads, and probes get answers while it does.
                if (result.GetValue(metricsPort) is < 0 or > 65535)
                {
                    throw new Models.InvalidInputException($"--metrics-port {result.GetValue(metricsPort)}: a port is 0-65535 (0: any free port)");
                }

                Akka.Actor.ActorSystem? system = null;
                var loaded = new System.Collections.Concurrent.ConcurrentDictionary<Akka.Actor.IActorRef, bool>();
                await using var operations = result.GetValue(metricsPort) is { } operationsPort
                    ? await OperationsServer.StartAsync(
                        options.Host, operationsPort, $"{options.Host}:{options.Port}",
                        c => system is null ? Task.FromResult<string?>("starting: loading the model") : NotReady(system, options, loaded, c), cancellation)
                    : null;
                system = ClusterNode.Start(options);
                var self = Akka.Cluster.Cluster.Get(system).SelfAddress;
                // SIGTERM before the node is Up (peers that never come, with discovery's 5 min wait) stops the actor system
                // (Akka's shutdown hook): that ends the wait, and the process, at once.
                using var stopped = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
                _ = system.WhenTerminated.ContinueWith(
                    _ =>
                    {
                        try
                        {
                            stopped.Cancel();
                        }
                        catch (ObjectDisposedException)
                        {
                            // The node ran and the command is over.
                        }
                    },
                    CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                try
                {
                    await ClusterJoin.WhenUpAsync(system, options.Join, options.JoinTimeout, stopped.Token);
                }
                catch (OperationCanceledException)
                {
                    await system.Terminate();
                    await result.InvocationConfiguration.Error.WriteLineAsync("di node: stopped before it joined its cluster");
                    return 0;
                }

                var dataPlane = Actors.Kernel.Transport.TensorDataPlane.For(system);
                await result.InvocationConfiguration.Output.WriteLineAsync($"di node: up at {self.Host}:{self.Port}{(dataPlane is null ? string.Empty : $" (data plane {dataPlane.Endpoint})")}");
                if (operations is not null)
                {
                    await result.InvocationConfiguration.Output.WriteLineAsync($"di node: metrics and health at {operations.Address}");
                }

                if (options.Discovery is { } found)
                {
                    await result.InvocationConfiguration.Output.WriteLineAsync($"di node: found by {found.Method} discovery; bootstrap contact point http://{options.Host}:{found.ManagementPort}/bootstrap/seed-nodes");
                }

                await result.InvocationConfiguration.Output.FlushAsync(cancellation);
                await system.WhenTerminated;
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    // --discovery and its settings; the settings without --discovery are a mistake worth one line.
    private static ClusterDiscovery? Discovery(
        System.CommandLine.ParseResult result, Option<string?> method, Option<string[]> contactPoints, Option<int?> required, Option<int> managementPort, Option<string> serviceName)
    {
        if (result.GetValue(method) is not { } chosen)
        {
            var stray = new Option[] { contactPoints, required, managementPort, serviceName }.FirstOrDefault(o => result.GetResult(o) is { Implicit: false });
            return stray is null ? null : throw new Models.InvalidInputException($"{stray.Name}: goes with --discovery config|kubernetes");
        }

        return new ClusterDiscovery(chosen, result.GetValue(contactPoints) ?? [], result.GetValue(required), result.GetValue(managementPort), result.GetValue(serviceName)!);
    }

    // Ready: Up in the cluster, and every device that loads a replica has its model loaded. A device answers between
    // two batches, so one that said it was loaded and is silent now is computing: still loaded (`loaded` remembers).
    private static async Task<string?> NotReady(
        Akka.Actor.ActorSystem system, NodeOptions options, System.Collections.Concurrent.ConcurrentDictionary<Akka.Actor.IActorRef, bool> loaded, CancellationToken cancellation)
    {
        if (!ClusterNode.IsUp(system))
        {
            return "not Up in the cluster yet";
        }

        var loadsReplicas = options.Roles.Contains(DeviceManager.Role)
            && (options.Serving.Contains(NodeOptions.ServeReplica) || options.Serving.Contains(NodeOptions.ServeRequests));
        if (!loadsReplicas)
        {
            return null;
        }

        var expected = Models.Runtime.DeviceName.ParseList(options.Devices).Count;
        try
        {
            var devices = await NodeDevices.AskAsync(system, Akka.Cluster.Cluster.Get(system).SelfAddress, TimeSpan.FromSeconds(2), cancellation);
            foreach (var (device, status) in devices)
            {
                if (status is { Spec: not null })
                {
                    loaded[device] = true;
                }
            }

            var ready = devices.Count(d => loaded.ContainsKey(d.Device));
            return ready == expected ? null : $"{ready} of {expected} device(s) have their model loaded";
        }
        catch (Akka.Actor.AskTimeoutException)
        {
            return "the device manager did not answer";
        }
    }
}
