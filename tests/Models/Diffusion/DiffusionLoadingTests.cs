using System.Text.Json.Nodes;
using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Diffusion;

/// <summary>Strict loading of pipeline folders: legacy names accepted as diffusers renames them, every other mismatch one line.</summary>
public sealed class DiffusionLoadingTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"di-sd-{Guid.NewGuid():N}");

    public DiffusionLoadingTests()
    {
        Models.Runtime.LibTorch.Initialize();
        CopyDirectory(SdTinyFixture.Model, _folder);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Legacy_vae_attention_names_and_clip_position_ids_load_to_the_same_model()
    {
        Rewrite("vae/diffusion_pytorch_model.safetensors", tensors =>
        {
            foreach (var (modern, legacy) in new[] { ("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn") })
            {
                foreach (var name in tensors.Keys.Where(k => k.Contains($"mid_block.attentions.0.{modern}.", StringComparison.Ordinal)).ToList())
                {
                    tensors[name.Replace($".{modern}.", $".{legacy}.", StringComparison.Ordinal)] = tensors[name];
                    tensors.Remove(name);
                }
            }
        });
        Rewrite("text_encoder/model.safetensors", tensors => tensors["text_model.embeddings.position_ids"] = arange(77L).unsqueeze(0));
        using var pipeline = StableDiffusionSource.Resolve(_folder).CreatePipeline(CPU, ScalarType.Float32);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var latents = SdTinyFixture.Expected("vae_probe_decoder_input");
        Assert.Equal(0.0, Fixtures.MaxAbsDiff(pipeline.Vae.Decode(latents), SdTinyFixture.Pipeline.Vae.Decode(latents)));
    }

    [Fact]
    public void A_missing_an_unexpected_or_a_misshaped_tensor_is_one_line()
    {
        const string Weights = "unet/diffusion_pytorch_model.safetensors";
        Rewrite(Weights, tensors => tensors.Remove("mid_block.resnets.1.conv2.bias"));
        Assert.Equal($"{Path.Combine(_folder, "unet")}: checkpoint has no tensor mid_block.resnets.1.conv2.bias", Error());

        CopyDirectory(SdTinyFixture.Model, _folder);
        Rewrite(Weights, tensors => tensors["mid_block.extra.weight"] = zeros(2));
        Assert.Equal($"{Path.Combine(_folder, "unet")}: unexpected tensor mid_block.extra.weight (not part of the model its config.json describes)", Error());

        CopyDirectory(SdTinyFixture.Model, _folder);
        Rewrite(Weights, tensors => tensors["conv_out.bias"] = zeros(5));
        Assert.Equal($"{Path.Combine(_folder, "unet")}: conv_out.bias is [5] but the config needs [4]", Error());
    }

    [Fact]
    public void A_folder_missing_a_component_is_one_line()
    {
        var index = Path.Combine(_folder, "model_index.json");
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(index))!;
        json.Remove("unet");
        File.WriteAllText(index, json.ToJsonString());
        var error = Assert.Throws<InvalidInputException>(() => StableDiffusionSource.Resolve(_folder));
        Assert.Equal($"{index}: component unet is missing (a StableDiffusionPipeline needs text_encoder, tokenizer, unet, vae, scheduler)", error.Message);

        CopyDirectory(SdTinyFixture.Model, _folder);
        Directory.Delete(Path.Combine(_folder, "vae"), recursive: true);
        error = Assert.Throws<InvalidInputException>(() => StableDiffusionSource.Resolve(_folder));
        Assert.Equal($"{_folder}: component folder vae/ is missing (model_index.json names it)", error.Message);
    }

    [Fact]
    public void Unsupported_config_values_are_named()
    {
        var config = Path.Combine(_folder, "unet", "config.json");
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(config))!;
        json["class_embed_type"] = "timestep";
        File.WriteAllText(config, json.ToJsonString());
        var error = Assert.Throws<InvalidInputException>(() => StableDiffusionSource.Resolve(_folder));
        Assert.Equal($"{config}: class_embed_type \"timestep\" is not supported (null, as in Stable Diffusion 1.x/2.x)", error.Message);
    }

    [Fact]
    public void A_pipeline_made_inside_a_dispose_scope_outlives_it()
    {
        StableDiffusionPipeline pipeline;
        using (var scope = NewDisposeScope())
        {
            pipeline = StableDiffusionSource.Resolve(_folder).CreatePipeline(CPU, ScalarType.Float32);
        }

        using (pipeline)
        {
            using var image = pipeline.Generate(pipeline.Source.Tokenizer.Tokenize(["a cat"]), null, new TextToImageOptions(1));
            Assert.Equal([1L, 32, 32, 3], image.shape);
        }
    }

    [Fact]
    public void Two_pipeline_folders_of_one_name_are_two_models_when_their_configs_differ()
    {
        var (a, b) = (Path.Combine(_folder, "a", "model"), Path.Combine(_folder, "b", "model"));
        CopyDirectory(SdTinyFixture.Model, a);
        CopyDirectory(SdTinyFixture.Model, b);
        Assert.Equal(Models.Tasks.ModelIdentity.Of(a, null), Models.Tasks.ModelIdentity.Of(b, null));
        var config = Path.Combine(b, "unet", "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"sample_size\": 16", "\"sample_size\": 24", StringComparison.Ordinal));
        Assert.NotEqual(Models.Tasks.ModelIdentity.Of(a, null), Models.Tasks.ModelIdentity.Of(b, null));
    }

    private string Error() =>
        Assert.Throws<InvalidInputException>(() => StableDiffusionSource.Resolve(_folder).CreatePipeline(CPU, ScalarType.Float32).Dispose()).Message;

    private void Rewrite(string file, Action<Dictionary<string, Tensor>> change)
    {
        var path = Path.Combine(_folder, file);
        var tensors = SafeTensorsFile.ReadAll(path);
        change(tensors);
        File.Delete(path);
        SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        foreach (var tensor in tensors.Values)
        {
            tensor.Dispose();
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
            File.SetAttributes(target, FileAttributes.Normal);
        }
    }
}
