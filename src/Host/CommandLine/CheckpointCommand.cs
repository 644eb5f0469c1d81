using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DistributedInference.Host.Inference;
using DistributedInference.Models;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di checkpoint random --config NAME|config.json --dtype bf16 --shards N --out DIR [--seed S]</c>: a Hugging Face
/// folder of seeded random weights for a Llama-family configuration, written tensor by tensor, for tests, benchmarks
/// and users without downloads. The folder, run in the dtype it was written in, computes what the built-in of the same
/// name computes with the same <c>--seed</c>.
/// </summary>
public static class CheckpointCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = $"a built-in Llama-family name ({string.Join(", ", LlamaConfig.BuiltIn.Keys)}) or a config.json path", Required = true };
        var dtype = SharedOptions.DType("stored dtype", Precision.Bf16);
        var shards = new Option<int>("--shards") { Description = "weight files (more than 1: with model.safetensors.index.json)", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out") { Description = "the folder to write (new or empty)", Required = true };
        var seed = SharedOptions.Seed("seed of the random weights (the built-in's --seed)");
        var random = new Command("random", "Write a model folder of seeded random weights (config.json, sharded safetensors, index), streaming.") { config, dtype, shards, output, seed };
        random.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                LibTorch.Initialize();
                var name = result.GetValue(config)!;
                var (llama, json) = Resolve(name);
                var type = result.GetValue(dtype).ToScalarType();
                var folder = result.GetValue(output)!;
                if (File.Exists(folder))
                {
                    throw new InvalidInputException($"--out {folder}: is a file; give a new or empty folder");
                }

                try
                {
                    Directory.CreateDirectory(folder);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new InvalidInputException($"--out {folder}: cannot create the folder ({e.Message})");
                }

                InputChecks.Writable("--out", Path.Combine(folder, "config.json"));
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var summary = LlamaRandomCheckpoint.Write(llama, json, result.GetValue(output)!, type, result.GetValue(shards), result.GetValue(seed));
                await result.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"di: wrote {result.GetValue(output)}: {llama.ModelType}, {summary.Tensors} tensors, {summary.TotalBytes / 1e6:F1} MB in {summary.Files.Count} file(s), {result.GetValue(dtype).Name()}, seed {result.GetValue(seed)} ({clock.Elapsed.TotalSeconds:F1} s)"));
                return 0;
            },
            result.InvocationConfiguration.Error));
        return new Command("checkpoint", "Model checkpoints: write random ones.") { random };
    }

    private static (LlamaConfig Config, JsonObject Json) Resolve(string name)
    {
        if (LlamaConfig.BuiltIn.TryGetValue(name, out var builtIn))
        {
            return (builtIn, LlamaConfigJson.ToJson(builtIn));
        }

        if (!File.Exists(name))
        {
            throw new InvalidInputException($"--config {name}: not a built-in Llama-family name ({string.Join(", ", LlamaConfig.BuiltIn.Keys)}) nor a config.json file");
        }

        var parsed = LlamaConfig.FromJson(name);
        return (parsed, (JsonObject)JsonNode.Parse(File.ReadAllText(name))!);
    }
}
