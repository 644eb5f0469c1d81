using DistributedInference.Models.Generation;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Models.Tests.Tasks;

/// <summary>
/// A model is its weights: copies of a folder under other names or paths are one model, folders of equal config and
/// tensor layout but other weights are two, and a folder is never written to find out.
/// </summary>
public sealed class ModelIdentityTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-identity-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Copy(string name, bool changeOneWeight = false) =>
        Fixtures.CopyModel(Fixtures.TinyLanguageModel, Path.Combine(_folder, name), changeOneWeight);

    [Fact]
    public void A_copy_under_another_name_and_path_is_the_same_model()
    {
        var original = ModelIdentity.Of(Fixtures.TinyLanguageModel, null);
        var copy = ModelIdentity.Of(Copy("renamed"), null);

        Assert.Equal(original, copy);
        Assert.Equal(("lm", "renamed"), (original.Name, copy.Name));
        Assert.Matches("^[0-9a-f]{64}$", original.WeightsDigest);
        Assert.Equal($"lm #{original.WeightsDigest[..8]}", original.ToString());
    }

    [Fact]
    public void One_changed_weight_under_the_same_name_config_and_layout_is_another_model()
    {
        var changed = Copy(Path.Combine("elsewhere", "lm"), changeOneWeight: true);
        Assert.Equal(File.ReadAllBytes(Path.Combine(Fixtures.TinyLanguageModel, "config.json")), File.ReadAllBytes(Path.Combine(changed, "config.json")));
        Assert.Equal(SafeTensorsFile.Open(Path.Combine(Fixtures.TinyLanguageModel, "model.safetensors")).Names, SafeTensorsFile.Open(Path.Combine(changed, "model.safetensors")).Names);

        var original = ModelIdentity.Of(Fixtures.TinyLanguageModel, null);
        var other = ModelIdentity.Of(changed, null);
        Assert.Equal(original.Name, other.Name);
        Assert.NotEqual(original, other);
        Assert.NotEqual(original.ToString(), other.ToString());
    }

    [Fact]
    public void The_configuration_is_part_of_the_model_and_the_tokenizer_is_not()
    {
        var original = ModelIdentity.Of(Fixtures.TinyLanguageModel, null);
        var tokenizer = Copy("tokenizer");
        File.WriteAllText(Path.Combine(tokenizer, "tokenizer_config.json"), "{\"model_max_length\": 16}");
        Assert.Equal(original, ModelIdentity.Of(tokenizer, null));

        var config = Copy("config");
        File.WriteAllText(Path.Combine(config, "config.json"), File.ReadAllText(Path.Combine(config, "config.json")).Replace("1e-05", "1e-06", StringComparison.Ordinal));
        Assert.NotEqual(original, ModelIdentity.Of(config, null));
    }

    [Fact]
    public void A_built_in_is_its_name_and_seed()
    {
        Assert.Equal(ModelIdentity.BuiltIn("gpt2-tiny", 3), ModelIdentity.Of("gpt2-tiny", 3));
        Assert.NotEqual(ModelIdentity.BuiltIn("gpt2-tiny", 3), ModelIdentity.BuiltIn("gpt2-tiny", 4));
        Assert.NotEqual(ModelIdentity.BuiltIn("gpt2-tiny", 3), ModelIdentity.BuiltIn("llama3-tiny", 3));
        Assert.StartsWith("gpt2-tiny seed 3 #", ModelIdentity.BuiltIn("gpt2-tiny", 3).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_folder_is_a_one_line_input_error()
    {
        var error = Assert.Throws<InvalidInputException>(() => ModelIdentity.Of(Path.Combine(_folder, "missing"), null));
        Assert.Contains("no such model folder", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Digests_are_computed_once_kept_on_disk_outside_the_folder_and_redone_when_a_file_changes()
    {
        var model = Copy("cached");
        foreach (var file in Directory.GetFiles(model))
        {
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow - TimeSpan.FromMinutes(1)); // older than the racy window
        }

        var cache = Path.Combine(_folder, "cache");
        var before = Directory.GetFiles(model).ToDictionary(f => f, File.GetLastWriteTimeUtc);

        var first = new CheckpointDigest(cache, diskCacheMinimumBytes: 0);
        var digest = first.Of(model);
        Assert.Equal(3, first.FilesHashed); // config.json, generation_config.json, model.safetensors
        Assert.Equal(digest, first.Of(model));
        Assert.Equal(3, first.FilesHashed); // in memory
        Assert.Equal(before, Directory.GetFiles(model).ToDictionary(f => f, File.GetLastWriteTimeUtc));
        Assert.Equal(3, Directory.GetFiles(cache).Length);

        var second = new CheckpointDigest(cache, diskCacheMinimumBytes: 0);
        Assert.Equal(digest, second.Of(model));
        Assert.Equal(0, second.FilesHashed); // from the cache folder

        // Rewritten: another last write time, so the entry no longer applies.
        var weights = Path.Combine(model, "model.safetensors");
        Fixtures.CopyModel(model, Path.Combine(_folder, "changed"), changeOneWeight: true);
        File.Copy(Path.Combine(_folder, "changed", "model.safetensors"), weights, overwrite: true);
        File.SetLastWriteTimeUtc(weights, before[weights] + TimeSpan.FromSeconds(1));
        var third = new CheckpointDigest(cache, diskCacheMinimumBytes: 0);
        Assert.NotEqual(digest, third.Of(model));
        Assert.Equal(1, third.FilesHashed);

        // Small files stay in memory only: nothing more is written below the default threshold.
        var small = new CheckpointDigest(Path.Combine(_folder, "small-cache"));
        Assert.Equal(digest, small.Of(Fixtures.TinyLanguageModel));
        Assert.False(Directory.Exists(Path.Combine(_folder, "small-cache")));
    }

    [Fact]
    public void A_file_written_within_the_racy_window_is_hashed_each_time_so_a_same_size_rewrite_is_seen()
    {
        var model = Copy("racy");
        var config = Path.Combine(model, "config.json");
        var digests = new CheckpointDigest(null);
        var stamp = DateTime.UtcNow;
        File.SetLastWriteTimeUtc(config, stamp);
        var first = digests.Of(model);

        // Same size, same last write time: only the bytes differ.
        File.WriteAllText(config, File.ReadAllText(config).Replace("1e-05", "2e-05", StringComparison.Ordinal));
        File.SetLastWriteTimeUtc(config, stamp);
        Assert.NotEqual(first, digests.Of(model));
    }

    [Fact]
    public void A_spec_compares_model_task_precision_and_the_decoding_that_changes_tokens()
    {
        var model = ModelIdentity.BuiltIn("gpt2-tiny", 0);
        var greedy = new ReplicaSpec(model, InferenceTask.Generate, Precision.Fp32, new GenerationOptions(8, Temperature: 0.5, Seed: 3));
        Assert.Equal(greedy, new ReplicaSpec(model with { Name = "copy" }, InferenceTask.Generate, Precision.Fp32, new GenerationOptions(8)));
        Assert.NotEqual(greedy, new ReplicaSpec(model, InferenceTask.Generate, Precision.Fp32, new GenerationOptions(9)));
        Assert.NotEqual(greedy, new ReplicaSpec(model, InferenceTask.Generate, Precision.Bf16, new GenerationOptions(8)));
        Assert.NotEqual(
            new ReplicaSpec(model, InferenceTask.Generate, Precision.Fp32, new GenerationOptions(8, DoSample: true, Seed: 1)),
            new ReplicaSpec(model, InferenceTask.Generate, Precision.Fp32, new GenerationOptions(8, DoSample: true, Seed: 2)));
        Assert.Equal(new ReplicaSpec(model, InferenceTask.Logits, Precision.Fp32, new GenerationOptions(8)), new ReplicaSpec(model, InferenceTask.Logits, Precision.Fp32));
        Assert.Equal($"{model} (generate, fp32, max_new_tokens 8, greedy) on cpu", greedy.On("cpu"));
    }
}
