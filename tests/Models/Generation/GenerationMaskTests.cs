using System.Text.Json.Nodes;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tests.Llama;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Generation;

/// <summary>
/// Generation without an attention mask infers the padding from the declared pad id, as transformers'
/// <c>_prepare_attention_mask_for_generation</c> does (public case: transformers#17426, left-padded batches given as
/// ids alone).
/// </summary>
public sealed class GenerationMaskTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-genmask-").FullName;

    public GenerationMaskTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static long[] Row(Tensor t, int row, int from = 0) => t[row].data<long>().Skip(from).ToArray();

    /// <summary>mistral-tiny with <c>pad_token_id: 0</c> in config.json (its fixture inputs are padded with 0; eos is 2).</summary>
    private LlamaForCausalLM MistralWithPadZero()
    {
        foreach (var file in Directory.GetFiles(LlamaFixtures.ModelFolder("mistral-tiny")))
        {
            File.Copy(file, Path.Combine(_folder, Path.GetFileName(file)));
        }

        var path = Path.Combine(_folder, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["pad_token_id"] = 0;
        File.WriteAllText(path, json.ToJsonString());
        return LlamaSource.Resolve(_folder).CreateModel(CPU, ScalarType.Float32);
    }

    [Fact]
    public void Left_padded_rows_given_without_a_mask_generate_what_each_row_generates_alone()
    {
        using var model = MistralWithPadZero();
        var source = LlamaFixtures.Expected("mistral-tiny", "input_ids");
        var lengths = new[] { 12, 9, 5, 7, 3, 1 };
        using var ids = zeros([lengths.Length, 12], ScalarType.Int64);
        for (var row = 0; row < lengths.Length; row++)
        {
            ids[row, (12 - lengths[row])..].copy_(source[row % 3, ..lengths[row]]);
        }

        var options = new GenerationOptions(MaxNewTokens: 6);
        using var together = model.Generate(ids, null, options);
        for (var row = 0; row < lengths.Length; row++)
        {
            using var alone = model.Generate(ids[row..(row + 1), (12 - lengths[row])..], null, options);
            Assert.Equal(Row(alone, 0), Row(together, row, 12 - lengths[row]));
        }
    }

    [Fact]
    public void Gpt2_right_padded_rows_without_a_mask_are_moved_left_as_their_pad_id_says()
    {
        // gpt2-tiny declares pad_token_id 0; cls_input_ids row r has 16 - 2r tokens, then 0s.
        using var model = Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, ScalarType.Float32);
        var ids = Fixtures.Expected("cls_input_ids");
        using var together = GreedySearch.Generate(model, ids, null, 5);
        for (var row = 0; row < 4; row++)
        {
            var real = 16 - (2 * row);
            using var alone = GreedySearch.Generate(model, ids[row..(row + 1), ..real], null, 5);
            Assert.Equal(Row(alone, 0), Row(together, row, 16 - real));
        }
    }

    [Fact]
    public void Follows_transformers_rule_for_when_a_mask_can_be_inferred()
    {
        using var ids = tensor(new long[] { 0, 0, 7, 8, 5, 6, 7, 8 }, [2, 4]);
        using var inferred = GenerationMask.Infer(ids, padTokenId: 0, endOfSequenceIds: [2]);
        Assert.Equal([0L, 0, 1, 1, 1, 1, 1, 1], inferred!.flatten().data<long>().ToArray());

        // No pad id declared, the pad id is an end-of-sequence id, or no row holds it: every position is a token.
        Assert.Null(GenerationMask.Infer(ids, padTokenId: null, endOfSequenceIds: [2]));
        Assert.Null(GenerationMask.Infer(ids, padTokenId: 0, endOfSequenceIds: [2, 0]));
        Assert.Null(GenerationMask.Infer(ids, padTokenId: 9, endOfSequenceIds: [2]));
    }
}
