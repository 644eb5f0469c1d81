using System.Text.Json.Nodes;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

public sealed class LlamaRandomCheckpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-random-").FullName;

    public LlamaRandomCheckpointTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("llama-tiny")]
    [InlineData("llama-3.2-1b")]
    [InlineData("qwen3-0.6b")]
    [InlineData("qwen2.5-0.5b")]
    [InlineData("mistral-7b")]
    public void Config_json_reads_back_into_the_same_config(string name)
    {
        var config = LlamaConfig.BuiltIn[name];
        var read = LlamaConfig.FromJson(name, LlamaConfigJson.ToJson(config));
        Assert.Equal(config with { SlidingLayers = [], EosTokenIds = [] }, read with { SlidingLayers = [], EosTokenIds = [] });
        Assert.Equal(config.SlidingLayers, read.SlidingLayers);
        Assert.Equal(config.EosTokenIds, read.EosTokenIds);
    }

    [Fact]
    public void Tensor_list_comes_from_a_meta_model_and_matches_a_real_one()
    {
        var config = LlamaConfig.BuiltIn["llama-tiny"];
        using var model = new LlamaForCausalLM(config);
        Assert.Equal(
            model.named_parameters().Select(p => (p.name, string.Join(",", p.parameter.shape))),
            LlamaRandomCheckpoint.TensorsOf(config).Select(t => (t.Name, string.Join(",", t.Shape))));
        // The 8B model's shapes without allocating its 32 GB.
        var big = LlamaRandomCheckpoint.TensorsOf(LlamaConfig.BuiltIn["llama-3.1-8b"]);
        Assert.Equal(8_030_261_248L, big.Sum(t => t.Shape.Aggregate(1L, (a, d) => a * d)));
    }

    [Theory]
    [InlineData(ScalarType.Float32, 3)]
    [InlineData(ScalarType.BFloat16, 1)]
    public void Folder_computes_what_the_built_in_computes_with_the_same_seed(ScalarType dtype, int shards)
    {
        var config = LlamaConfig.BuiltIn["llama-tiny"];
        var folder = Path.Combine(_folder, "model");
        var summary = LlamaRandomCheckpoint.Write(config, LlamaConfigJson.ToJson(config), folder, dtype, shards, seed: 7);

        Assert.Equal(shards, summary.Files.Count);
        Assert.All(summary.Files, f => Assert.True(File.Exists(Path.Combine(folder, f))));
        var index = Path.Combine(folder, "model.safetensors.index.json");
        Assert.Equal(shards > 1, File.Exists(index));
        if (shards > 1)
        {
            var json = JsonNode.Parse(File.ReadAllText(index))!;
            Assert.Equal(summary.TotalBytes, json["metadata"]!["total_size"]!.GetValue<long>());
            Assert.Equal(summary.Tensors, json["weight_map"]!.AsObject().Count);
        }

        Assert.Equal(summary.TotalBytes, summary.Files.Sum(f => new FileInfo(Path.Combine(folder, f)).Length - HeaderBytes(Path.Combine(folder, f))));
        using var ids = tensor(new long[,] { { 5, 17, 300, 2, 99, 637 }, { 1, 2, 3, 4, 5, 6 } });
        using var fromFolder = LlamaSource.Resolve(folder).CreateModel(CPU, dtype);
        using var builtIn = LlamaSource.Resolve("llama-tiny", seed: 7).CreateModel(CPU, dtype);
        using var expected = builtIn.Logits(ids);
        using var actual = fromFolder.Logits(ids);
        Assert.Equal(0.0, Fixtures.MaxAbsDiff(actual, expected));

        using var otherSeed = LlamaSource.Resolve("llama-tiny", seed: 8).CreateModel(CPU, dtype);
        using var other = otherSeed.Logits(ids);
        Assert.True(Fixtures.MaxAbsDiff(other, expected) > 1e-3);
    }

    [Fact]
    public void Refuses_a_folder_that_is_not_empty_and_impossible_shard_counts()
    {
        var config = LlamaConfig.BuiltIn["llama-tiny"];
        File.WriteAllText(Path.Combine(_folder, "x"), "x");
        var e = Assert.Throws<InvalidInputException>(() => LlamaRandomCheckpoint.Write(config, LlamaConfigJson.ToJson(config), _folder, ScalarType.Float32, 1, 0));
        Assert.Contains("not empty", e.Message);
        e = Assert.Throws<InvalidInputException>(() => LlamaRandomCheckpoint.Write(config, LlamaConfigJson.ToJson(config), Path.Combine(_folder, "n"), ScalarType.Float32, 1000, 0));
        Assert.Contains("--shards", e.Message);
    }

    private static long HeaderBytes(string file)
    {
        using var stream = File.OpenRead(file);
        var prefix = new byte[8];
        stream.ReadExactly(prefix);
        return 8 + BitConverter.ToInt64(prefix);
    }
}
