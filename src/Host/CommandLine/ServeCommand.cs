using System.CommandLine;
using System.Runtime.InteropServices;
using DistributedInference.Host.Cluster;
using DistributedInference.Host.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Templates;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di serve --model DIR|NAME</c>: the OpenAI-compatible HTTP API over this machine's devices, or with
/// <c>--join HOST:PORT</c> over a cluster's (nodes started with <c>di node --serve requests</c>). One line on stderr
/// once it listens (<c>di serve: listening on http://HOST:PORT</c>); SIGTERM or Ctrl-C drains it (no new requests,
/// in-flight ones finish within <c>--drain-timeout</c>) and it exits 0; a second signal exits at once.
/// </summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "the model to serve: a Hugging Face folder (decoder or sentence-transformers) or a built-in name", HelpName = "DIR|NAME", Required = true };
        var devices = new Option<string>("--devices") { Description = "this machine's devices, one device actor each (ignored with --join)", DefaultValueFactory = _ => "cpu" };
        var host = new Option<string>("--host") { Description = "address to listen on (0.0.0.0: every interface; put TLS in front, see README)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "port to listen on (0: any free port)", DefaultValueFactory = _ => 8000 };
        var join = SharedOptions.Join("run requests on the cluster of this node (repeatable); nodes serve the model with di node --serve requests");
        var apiKey = new Option<string?>("--api-key") { Description = "requests must send 'Authorization: Bearer KEY' (also $DI_API_KEY)", HelpName = "KEY" };
        var dtype = SharedOptions.DType("precision of the model on the devices", Models.Runtime.Precision.Fp32);
        var seed = SharedOptions.Seed("seed of a built-in model's random weights");
        var servedName = new Option<string?>("--served-model-name") { Description = "the model name the API reports and requests name (default: --model as given)", HelpName = "NAME" };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "a Jinja chat template file to use instead of the folder's", HelpName = "FILE" };
        var maxConcurrent = new Option<int>("--max-concurrent-requests") { Description = "generation and embedding requests in flight at once; more get 429", DefaultValueFactory = _ => 64 };
        var maxBody = new Option<long>("--max-request-bytes") { Description = "largest request body accepted; larger get 413", DefaultValueFactory = _ => 16 * 1024 * 1024 };
        var drain = new Option<double>("--drain-timeout") { Description = "seconds in-flight requests get to finish after SIGTERM", DefaultValueFactory = _ => 30, HelpName = "SECONDS" };
        var joinTimeout = SharedOptions.JoinTimeout();
        var secretFile = SharedOptions.SecretFile();
        var tlsCertificate = SharedOptions.TlsCertificate();
        var libtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch; also ${LibTorch.FolderVariable}" };
        var https = new Option<string?>("--https-certificate") { Description = $"serve HTTPS with this PKCS#12 certificate (password in ${ServeOptions.HttpsPasswordVariable})", HelpName = "FILE" };
        var batching = new Option<string>("--batching") { Description = "continuous: each device runs requests side by side, joining and leaving at every decode step (vLLM's scheduling); per-request: one request at a time per device (with --join: through the cluster's job coordinators)", DefaultValueFactory = _ => "continuous" };
        batching.AcceptOnlyFromAmong("continuous", "per-request");
        var mode = SharedOptions.Choice("--mode", "replica: every device holds the whole model; pipeline: the decoder is cut into one stage per device, and continuous batching runs micro-batches of sequences through the stages", Inference.Mode.Replica, Inference.Modes.Parse, Enum.GetValues<Inference.Mode>().Select(Inference.Modes.Name));
        var splitPoints = new Option<string>("--split-points") { Description = "pipeline: auto (balanced by parameter bytes), compute (balanced by estimated FLOPs per token), or the layers that start stages 2, 3, ...: layers.2,layers.5", DefaultValueFactory = _ => "auto" };
        var numChunks = new Option<int?>("--num-chunks") { Description = "pipeline: continuous-batching engines, one micro-batch of sequences in flight each, sharing the stages' KV cache (default: one per stage)" };
        var continuous = new ContinuousBatchingArguments();
        var command = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (completions, chat, embeddings).")
        {
            model, devices, host, port, join, apiKey, dtype, seed, servedName, chatTemplate, maxConcurrent, maxBody, drain, joinTimeout, secretFile, tlsCertificate, libtorch, https,
            batching, mode, splitPoints, numChunks,
        };
        foreach (var option in continuous.Options)
        {
            command.Options.Add(option);
        }

        command.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var options = new ServeOptions(
                    result.GetValue(model)!, result.GetValue(devices)!, result.GetValue(host)!, result.GetValue(port), result.GetValue(join) ?? [],
                    result.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("DI_API_KEY"), result.GetValue(dtype), result.GetValue(seed),
                    result.GetValue(servedName), result.GetValue(chatTemplate), result.GetValue(maxConcurrent), result.GetValue(maxBody),
                    TimeSpan.FromSeconds(result.GetValue(drain)), SharedOptions.Seconds(result.GetValue(joinTimeout)),
                    ClusterSecret.Read(result.GetValue(secretFile)), result.GetValue(tlsCertificate), result.GetValue(libtorch), result.GetValue(https),
                    result.GetValue(batching) == "continuous",
                    continuous.Read(result),
                    result.GetValue(mode),
                    result.GetValue(splitPoints)!,
                    result.GetValue(numChunks));
                return await RunAsync(options, result.InvocationConfiguration.Error);
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    private static async Task<int> RunAsync(ServeOptions options, TextWriter stderr)
    {
        if (options.Port is < 0 or > 65535 || options.MaxConcurrentRequests < 1 || options.MaxRequestBodyBytes < 1 || options.Drain < TimeSpan.Zero)
        {
            throw new InvalidInputException("--port must be 0-65535, --max-concurrent-requests and --max-request-bytes at least 1, --drain-timeout not negative");
        }

        using var signalled = new CancellationTokenSource();
        var signals = 0;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.Increment(ref signals) > 1)
            {
                TerminationSignals.ExitAtOnce(context.Signal == PosixSignal.SIGINT ? 130 : 143);
            }

            signalled.Cancel();
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        LibTorch.Initialize(options.LibTorch);
        ServedModel model;
        try
        {
            model = ServedModel.Load(options.Model, options.ServedModelName, options.ChatTemplate, options.Seed);
        }
        catch (TemplateException e)
        {
            throw new InvalidInputException(e.Message);
        }

        if (model.Draws)
        {
            throw new InvalidInputException($"{model.Name} is a text-to-image pipeline: di serve has no images endpoint; run its requests with di batch (url /v1/images/generations)");
        }

        await using var backend = await ServingBackend.StartAsync(model, options, signalled.Token);
        await using var server = await OpenAIServer.StartAsync(new ServingContext(model, backend, options), signalled.Token);
        await stderr.WriteLineAsync($"di serve: {model.Name} ({(model.Generates ? "completions, chat" : "embeddings")}) on {backend.Describe()}{(model.Generates && model.ChatTemplate is null ? "; no chat template" : string.Empty)}");
        await stderr.WriteLineAsync($"di serve: listening on {server.Address.ToString().TrimEnd('/')}");
        await stderr.FlushAsync();
        // Until a signal, or until the cluster it joined has removed it: then it can serve nothing, and a supervisor restarts it.
        var stopped = await Task.WhenAny(Task.Delay(Timeout.Infinite, signalled.Token), backend.Lost);
        if (stopped == backend.Lost)
        {
            await stderr.WriteLineAsync($"di: error: {await backend.Lost}");
        }

        await stderr.WriteLineAsync($"di serve: draining (in-flight requests get up to {options.Drain.TotalSeconds:0.#} s)");
        await server.StopAsync();
        await stderr.WriteLineAsync("di serve: stopped");
        return stopped == backend.Lost ? 1 : 0;
    }
}
