using DistributedInference.Models.Auto;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tests.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Loading;

/// <summary>
/// A weight stored with an integer or boolean dtype is a corrupt checkpoint, in every family: one line naming it,
/// never a silent conversion (an I32 copy of an F32 weight loaded and moved logits by 1.04).
/// </summary>
public sealed class CheckpointDtypeTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-dtype-").FullName;

    public CheckpointDtypeTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<string, string, string> Weights => new()
    {
        { "gpt2-tiny/lm", "transformer.h.0.mlp.c_fc.weight", "I32" },
        { "gpt2-tiny/cls", "score.weight", "I64" },
        { "mistral-tiny/model", "model.layers.0.mlp.up_proj.weight", "I32" },
        { "qwen2-tiny/model", "model.layers.1.self_attn.q_proj.bias", "I8" },
        { "minilm-tiny/model", "encoder.layer.0.attention.self.query.weight", "BOOL" },
    };

    [Theory]
    [MemberData(nameof(Weights))]
    public void A_weight_stored_as_integers_is_one_line_naming_it(string fixture, string weight, string dtype)
    {
        var source = Path.Combine(Fixtures.Root, fixture);
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_folder, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        var path = Path.Combine(_folder, "model.safetensors");
        var tensors = SafeTensorsFile.ReadAll(path);
        var scaled = tensors[weight].to(ScalarType.Float32).mul(1000);
        tensors[weight] = dtype switch
        {
            "I32" => scaled.to(ScalarType.Int32),
            "I64" => scaled.to(ScalarType.Int64),
            "I8" => scaled.clamp(-100, 100).to(ScalarType.Int8),
            _ => scaled.gt(0),
        };
        SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        var model = AutoModelSource.Resolve(_folder, 0);
        var task = model.Tasks.Contains(InferenceTask.Classify) ? InferenceTask.Classify : model.Tasks[0];
        var error = Assert.Throws<InvalidInputException>(() => model.Replica(task, ScalarType.Float32, Models.Generation.GenerationOptions.Greedy)(DeviceName.Parse("cpu")).Dispose());
        Assert.Contains($"'{weight}' is stored as {dtype}", error.Message, StringComparison.Ordinal);
        Assert.Contains("a corrupt checkpoint", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);

        // The staged view reads tensors with the same rule.
        error = Assert.Throws<InvalidInputException>(() =>
        {
            var staged = model.LoadStaged(task);
            try
            {
                staged.CreateStage(0, staged.Layers.Count, CPU, ScalarType.Float32).Dispose();
            }
            finally
            {
                (staged as IDisposable)?.Dispose();
            }
        });
        Assert.Contains($"'{weight}' is stored as {dtype}", error.Message, StringComparison.Ordinal);
    }
}
