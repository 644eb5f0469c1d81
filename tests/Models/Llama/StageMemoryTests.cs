using DistributedInference.Models.Llama;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

/// <summary>
/// A random Llama checkpoint of ~300 MB (bf16, written by <see cref="LlamaRandomCheckpoint"/>) cut into 4 stages in one
/// process: each stage's load raises the resident peak by at most 1.25x its weights (it reads only its own tensors,
/// straight into its parameters), and the 4 stages compute the one-device logits.
/// </summary>
[Collection(AloneTests.Collection)]
public sealed class StageMemoryTests : IDisposable
{
    private static readonly LlamaConfig Config = LlamaConfig.BuiltIn["llama-tiny"] with
    {
        VocabSize = 32000,
        HiddenSize = 1024,
        IntermediateSize = 4096,
        LayerCount = 6,
        HeadCount = 16,
        KeyValueHeadCount = 4,
        HeadDim = 64,
        TieWordEmbeddings = false,
        MaxPositions = 512,
        Rope = RopeParameters.Default(10000),
        BosTokenId = 1,
        EosTokenIds = [2],
    };

    private readonly string _folder = Directory.CreateTempSubdirectory("di-stagemem-").FullName;
    private readonly ITestOutputHelper _output;

    public StageMemoryTests(ITestOutputHelper output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Four_stages_of_a_300_mb_checkpoint_each_peak_within_one_and_a_quarter_of_their_weights()
    {
        var folder = Path.Combine(_folder, "model");
        var summary = LlamaRandomCheckpoint.Write(Config, LlamaConfigJson.ToJson(Config), folder, ScalarType.BFloat16, shards: 3, seed: 1);
        _output.WriteLine($"checkpoint: {summary.TotalBytes / 1e6:F0} MB in {summary.Files.Count} files");
        Assert.InRange(summary.TotalBytes, 280_000_000, 340_000_000);

        var staged = new LlamaStagedModel(LlamaSource.Resolve(folder), ScalarType.BFloat16);
        var plan = Partitioner.Plan(staged.Layers, Enumerable.Repeat(DeviceName.Cpu, 4).ToList(), "auto");
        var (loads, stages) = StageLoadMeasurement.LoadEach(staged, plan, ScalarType.BFloat16);
        try
        {
            foreach (var load in loads)
            {
                _output.WriteLine($"stage {load.Stage} ({string.Join(",", plan.Stages[load.Stage].LayerNames)}): weights {load.WeightBytes / 1e6:F1} MB, peak rise {load.PeakRise / 1e6:F1} MB ({load.Ratio:F2}x), VmHWM {load.PeakResident / 1e6:F0} MB");
            }

            Assert.Equal(summary.TotalBytes, loads.Sum(l => l.WeightBytes));
            Assert.All(loads, load => Assert.True(load.PeakRise <= 1.25 * load.WeightBytes, $"stage {load.Stage}: peak rise {load.PeakRise} > 1.25 x {load.WeightBytes}"));

            using var ids = tensor(new long[,] { { 1, 50, 700, 31999, 5, 6, 7, 8 }, { 9, 10, 11, 12, 13, 14, 15, 16 } });
            var batch = StagedBatch.FromTokens(ids);
            foreach (var stage in stages)
            {
                batch = stage.Run(batch);
            }

            using var model = LlamaSource.Resolve(folder).CreateModel(CPU, ScalarType.BFloat16);
            using var expected = model.Logits(ids);
            var diff = Fixtures.MaxAbsDiff(batch.Hidden, expected);
            _output.WriteLine($"4 stages against one device: logits max |diff| {diff:E2}");
            Assert.True(diff <= 1e-4, $"{diff}");
        }
        finally
        {
            foreach (var stage in stages)
            {
                stage.Dispose();
            }
        }
    }
}
