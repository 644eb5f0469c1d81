using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// A model bigger than its stages: a ~250 MB bf16 random Llama checkpoint over 4 <c>di node</c> processes, each loading
/// only its own stage's weights (peak resident memory within its baseline + 1.25x the stage's bytes, as each node reports
/// it from /proc/self/status), with the logits of a one-device run.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed partial class StageNodeMemoryTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-stage-memory-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Four_stage_nodes_each_hold_only_their_own_weights()
    {
        var config = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(DiRunner.Fixtures, "llama3-tiny", "model", "config.json")))!.AsObject();
        config["vocab_size"] = 32000;
        config["hidden_size"] = 768;
        config["intermediate_size"] = 2048;
        config["num_hidden_layers"] = 12;
        config["num_attention_heads"] = 12;
        config["num_key_value_heads"] = 4;
        config["head_dim"] = 64;
        config["tie_word_embeddings"] = false;
        config["bos_token_id"] = 1;
        config["eos_token_id"] = 2;
        var configPath = Path.Combine(_folder, "config.json");
        await File.WriteAllTextAsync(configPath, config.ToJsonString());
        var model = Path.Combine(_folder, "model");
        var (exit, _, stderr) = await DiRunner.Run("checkpoint", "random", "--config", configPath, "--dtype", "bf16", "--shards", "3", "--out", model);
        Assert.True(exit == 0, stderr);

        var input = Path.Combine(_folder, "ids.safetensors");
        SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = randint(3, 32000, [4, 32], ScalarType.Int64, generator: manual_seed(1)) });
        var single = Path.Combine(_folder, "single.safetensors");
        (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(4), "infer", "--model", model, "--task", "logits", "--dtype", "bf16", "--input-ids", input, "--output", single);
        Assert.True(exit == 0, stderr);

        var staged = Path.Combine(_folder, "staged.safetensors");
        (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(6), "launch", "--num-processes", "4", "--", "infer", "--mode", "pipeline", "--devices", "cpu",
            "--task", "logits", "--model", model, "--dtype", "bf16", "--input-ids", input, "--output", staged);
        Assert.True(exit == 0, stderr);

        var stages = StageLine().Matches(stderr);
        Assert.Equal(4, stages.Count);
        foreach (Match stage in stages)
        {
            var weights = double.Parse(stage.Groups["weights"].Value, CultureInfo.InvariantCulture);
            var growth = double.Parse(stage.Groups["growth"].Value, CultureInfo.InvariantCulture);
            Assert.True(weights > 40, stage.Value);
            Assert.True(growth <= 1.25 * weights, stage.Value);
        }

        Assert.True(DiRunner.MaxAbsDiff(SafeTensorsFile.Open(staged).Read("logits"), SafeTensorsFile.Open(single).Read("logits")) <= 1e-4);
    }

    [GeneratedRegex(@"di: stage \d: .*: (?<weights>[\d.]+) MB of weights loaded, process resident \d+ MB before and peak \d+ MB after loading \(\+(?<growth>[\d.]+) MB")]
    private static partial Regex StageLine();
}
