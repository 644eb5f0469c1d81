using DistributedInference.Models.Bert;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Bert;

/// <summary>Broken model folders end in one line naming the file, key or tensor at fault.</summary>
public sealed class BertBadInputTests
{
    public BertBadInputTests() => LibTorch.Initialize();

    private static InvalidInputException Fails(Action action, string mentions)
    {
        var error = Assert.Throws<InvalidInputException>(action);
        Assert.Contains(mentions, error.Message);
        Assert.DoesNotContain('\n', error.Message);
        return error;
    }

    private static void Edit(string path, Func<string, string> edit) => File.WriteAllText(path, edit(File.ReadAllText(path)));

    [Fact]
    public void Unknown_pooling_mode()
    {
        using var folder = MiniLmFixture.Copy();
        Edit(Path.Combine(folder.Path, "1_Pooling", "config.json"), s => s.Replace("\"pooling_mode_mean_tokens\"", "\"pooling_mode_median_tokens\""));
        Fails(() => BertSource.Resolve(folder.Path), "pooling_mode_median_tokens");
    }

    [Fact]
    public void Weighted_mean_pooling_is_not_supported()
    {
        using var folder = MiniLmFixture.Copy();
        Edit(Path.Combine(folder.Path, "1_Pooling", "config.json"), s => s.Replace("\"pooling_mode_weightedmean_tokens\": false", "\"pooling_mode_weightedmean_tokens\": true"));
        Fails(() => BertSource.Resolve(folder.Path), "pooling_mode_weightedmean_tokens");
    }

    [Fact]
    public void Missing_tensor()
    {
        using var folder = MiniLmFixture.Copy();
        var weights = Path.Combine(folder.Path, "model.safetensors");
        var stored = SafeTensorsFile.ReadAll(weights);
        stored.Remove("encoder.layer.1.attention.self.key.bias");
        SafeTensorsFile.Write(weights, stored);
        var source = BertSource.Resolve(folder.Path);
        Fails(() => source.CreateModel(CPU, ScalarType.Float32), "encoder.layer.1.attention.self.key.bias");
    }

    [Fact]
    public void Unexpected_tensor()
    {
        using var folder = MiniLmFixture.Copy();
        var weights = Path.Combine(folder.Path, "model.safetensors");
        var stored = SafeTensorsFile.ReadAll(weights);
        stored["cls.predictions.bias"] = zeros(348);
        stored["embeddings.position_ids"] = arange(64L).unsqueeze(0);
        SafeTensorsFile.Write(weights, stored);
        var source = BertSource.Resolve(folder.Path);
        Fails(() => source.CreateModel(CPU, ScalarType.Float32), "cls.predictions.bias");
    }

    [Fact]
    public void Wrong_shape()
    {
        using var folder = MiniLmFixture.Copy();
        Edit(Path.Combine(folder.Path, "config.json"), s => s.Replace("\"intermediate_size\": 128", "\"intermediate_size\": 96"));
        var source = BertSource.Resolve(folder.Path);
        Fails(() => source.CreateModel(CPU, ScalarType.Float32), "intermediate.dense");
    }

    [Fact]
    public void Tokenizer_json_that_does_not_parse()
    {
        using var folder = MiniLmFixture.Copy();
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer.json"), "{\"version\": \"1.0\", \"model\": [");
        var source = BertSource.Resolve(folder.Path);
        Fails(() => source.LoadTokenizer(), "tokenizer.json");
    }

    [Fact]
    public void Impossible_config_values_name_the_key()
    {
        using var folder = MiniLmFixture.Copy();
        var config = Path.Combine(folder.Path, "config.json");
        var original = File.ReadAllText(config);
        File.WriteAllText(config, original.Replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 5"));
        Fails(() => BertSource.Resolve(folder.Path), "num_attention_heads");
        File.WriteAllText(config, original.Replace("\"vocab_size\": 348", "\"vocab_size\": -1"));
        Fails(() => BertSource.Resolve(folder.Path), "vocab_size");
        File.WriteAllText(config, original.Replace("\"hidden_size\": 64", "\"hidden_size\": \"big\""));
        Fails(() => BertSource.Resolve(folder.Path), "hidden_size");
        File.WriteAllText(config, original.Replace("\"position_embedding_type\": \"absolute\"", "\"position_embedding_type\": \"relative_key\""));
        Fails(() => BertSource.Resolve(folder.Path), "position_embedding_type");
        File.WriteAllText(config, original.Replace("\"model_type\": \"bert\"", "\"model_type\": \"roberta\""));
        Fails(() => BertSource.Resolve(folder.Path), "model_type");
    }

    [Fact]
    public void Unsupported_module_in_modules_json()
    {
        using var folder = MiniLmFixture.Copy();
        Edit(Path.Combine(folder.Path, "modules.json"), s => s.Replace("sentence_transformers.models.Normalize", "sentence_transformers.models.Dense"));
        Fails(() => BertSource.Resolve(folder.Path), "sentence_transformers.models.Dense");
    }

    [Fact]
    public void A_plain_bert_folder_mean_pools_without_normalising_up_to_max_positions()
    {
        using var folder = MiniLmFixture.Copy();
        File.Delete(Path.Combine(folder.Path, "modules.json"));
        var source = BertSource.Resolve(folder.Path);
        Assert.Equal(SentencePooling.Mean, source.Sentence.Pooling);
        Assert.False(source.Sentence.Normalize);
        Assert.Equal(64, source.Sentence.MaxSeqLength);
        using var embedder = source.CreateEmbedder(CPU, ScalarType.Float32);
        using var embeddings = embedder.Embed(MiniLmFixture.Expected("input_ids"), MiniLmFixture.Expected("attention_mask"));
        Fixtures.AssertClose(MiniLmFixture.Expected("mean_pooled"), embeddings);
    }

    [Fact]
    public void Unknown_model_name()
    {
        Fails(() => BertSource.Resolve("no-such-bert"), "no-such-bert");
    }
}
