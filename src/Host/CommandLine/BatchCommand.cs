using System.CommandLine;
using System.Runtime.InteropServices;
using DistributedInference.Host.Batch;
using DistributedInference.Host.Cluster;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di batch --model DIR|NAME --input F.jsonl --output O.jsonl</c>: every request of an OpenAI batch input file
/// answered exactly once in an OpenAI batch output file, on this machine's devices or, with <c>--join</c>, a cluster's.
/// Run again after any crash to go on (<see cref="BatchOutput"/>). SIGINT/SIGTERM: what is answered stays, exit 130/143;
/// a second signal exits at once. Exit 0 when every request is answered (failed ones with an error line), 2 for bad
/// input (duplicate custom_ids, an output of another batch), 1 when no device could run the requests.
/// </summary>
public static class BatchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "the model: a Hugging Face folder (decoder or sentence-transformers) or a built-in name", HelpName = "DIR|NAME", Required = true };
        var input = new Option<string>("--input") { Description = "OpenAI batch input file: one {\"custom_id\", \"method\", \"url\", \"body\"} request a line", HelpName = "FILE.jsonl", Required = true };
        var output = new Option<string>("--output") { Description = "OpenAI batch output file; an existing one is resumed (see --restart)", HelpName = "FILE.jsonl", Required = true };
        var devices = new Option<string>("--devices") { Description = "this machine's devices, one device actor each (ignored with --join)", DefaultValueFactory = _ => "cpu" };
        var join = SharedOptions.Join("run the requests on the cluster of this node (repeatable); nodes serve the model with di node --serve requests");
        var dtype = SharedOptions.DType("precision of the model on the devices", Precision.Fp32);
        var seed = SharedOptions.Seed("seed of a built-in model's random weights and of sampling when a body gives none");
        var servedName = new Option<string?>("--served-model-name") { Description = "the model name bodies may give in 'model' (default: --model as given)", HelpName = "NAME" };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "a Jinja chat template file to use instead of the folder's", HelpName = "FILE" };
        var maxBatch = new Option<int>("--max-batch-size") { Description = "rows per forward pass on a device", DefaultValueFactory = _ => 8 };
        var window = new Option<int>("--window") { Description = "requests read ahead and grouped by length before they are cut into jobs", DefaultValueFactory = _ => 1024 };
        var jobRows = new Option<int>("--job-rows") { Description = "rows (sequences or embedding inputs) per replica job", DefaultValueFactory = _ => 256 };
        var jobsInFlight = new Option<int>("--jobs-in-flight") { Description = "replica jobs running at once", DefaultValueFactory = _ => 4 };
        var grouping = new Option<bool>("--group-by-length") { Description = "sort each window by prompt length before cutting it into jobs (less padding)", DefaultValueFactory = _ => true };
        var ordered = new Option<bool>("--ordered") { Description = "write the output in input order (default: as requests finish)" };
        var restart = new Option<bool>("--restart") { Description = "empty the output and start over instead of resuming it" };
        var progressEvery = new Option<double>("--progress-every") { Description = "seconds between progress lines when stderr is not a terminal", DefaultValueFactory = _ => 10, HelpName = "SECONDS" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress, no summary line; errors stay" };
        var jsonSummary = new Option<string?>("--json-summary") { Description = "also write the summary (requests ok/failed, tokens, wall time, resumed) to this JSON file", HelpName = "FILE" };
        var joinTimeout = SharedOptions.JoinTimeout();
        var secretFile = SharedOptions.SecretFile();
        var tlsCertificate = SharedOptions.TlsCertificate();
        var libtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch; also ${LibTorch.FolderVariable}" };
        var maxRequestBytes = new Option<long>("--max-request-bytes") { Description = "longest input line; longer ones are answered request_too_large", DefaultValueFactory = _ => 16 * 1024 * 1024 };
        var command = new Command("batch", "Answer every request of an OpenAI batch file (completions, chat, embeddings) exactly once; resumable after any crash.")
        {
            model, input, output, devices, join, dtype, seed, servedName, chatTemplate, maxBatch, window, jobRows, jobsInFlight, grouping, ordered, restart,
            progressEvery, quiet, jsonSummary, joinTimeout, secretFile, tlsCertificate, libtorch, maxRequestBytes,
        };
        command.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var every = result.GetValue(progressEvery);
                if (!(every > 0 && every <= 86400))
                {
                    throw new InvalidInputException("--progress-every must be a number of seconds above 0, at most 86400");
                }

                var options = new BatchOptions(
                    result.GetValue(model)!, result.GetValue(input)!, result.GetValue(output)!, result.GetValue(devices)!, result.GetValue(join) ?? [],
                    result.GetValue(dtype), result.GetValue(seed), result.GetValue(servedName), result.GetValue(chatTemplate), result.GetValue(maxBatch),
                    result.GetValue(window), result.GetValue(jobRows), result.GetValue(jobsInFlight), result.GetValue(grouping), result.GetValue(ordered),
                    result.GetValue(restart), TimeSpan.FromSeconds(every), result.GetValue(quiet), result.GetValue(jsonSummary),
                    SharedOptions.Seconds(result.GetValue(joinTimeout)), ClusterSecret.Read(result.GetValue(secretFile)), result.GetValue(tlsCertificate),
                    result.GetValue(libtorch), result.GetValue(maxRequestBytes));
                return await RunAsync(options, result.InvocationConfiguration.Error);
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    private static async Task<int> RunAsync(BatchOptions options, TextWriter stderr)
    {
        using var signalled = new CancellationTokenSource();
        var signal = 0;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            var code = context.Signal == PosixSignal.SIGINT ? 130 : 143;
            if (Interlocked.Exchange(ref signal, code) != 0)
            {
                TerminationSignals.ExitAtOnce(code);
            }

            signalled.Cancel();
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        LibTorch.Initialize(options.LibTorch);
        try
        {
            var summary = await BatchRunner.RunAsync(options, stderr, signalled.Token);
            summary.Report(stderr, options.Quiet, options.JsonSummary);
            return 0;
        }
        catch (OperationCanceledException) when (signalled.IsCancellationRequested)
        {
            await stderr.WriteLineAsync($"di batch: stopped; what was answered is in {options.Output}: run the same command again to go on");
            return Volatile.Read(ref signal);
        }
    }
}
