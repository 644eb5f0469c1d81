using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Replica;

/// <summary>
/// The library's one loader (<see cref="AutoModelSource"/>) for every family, in both runtimes: what an embedding app
/// does without the command line.
/// </summary>
public sealed class ModelFamilyRuntimeTests
{
    public ModelFamilyRuntimeTests() => LibTorch.Initialize();

    private static string Folder(string fixture, string file = "") => Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "model", file);

    private static Tensor Expected(string fixture, string name) =>
        SafeTensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "expected.safetensors")).Read(name);

    [Fact]
    public async Task Prompts_to_a_decoder_replica_come_back_as_completions_equal_to_each_prompt_alone()
    {
        var source = AutoModelSource.Resolve(Folder("qwen2-tiny"));
        Assert.Equal("qwen2", source.ModelType);
        var generation = new GenerationOptions(MaxNewTokens: 4);
        await using var runtime = await ReplicaRuntime.StartAsync([DeviceName.Cpu, DeviceName.Cpu], source.Replica(InferenceTask.Generate, ScalarType.Float32, generation));
        string[] prompts = ["a zebra met a quokka", "hello", "Hello, world! 123"];

        var result = await runtime.Client.RunAsync(prompts, new JobOptions(MaxBatchSize: 2));

        var completions = ((object[])result.Results!).Cast<Completion>().ToList();
        Assert.Equal(prompts, completions.Select(c => c.Prompt));
        using var alone = source.Replica(InferenceTask.Generate, ScalarType.Float32, generation)(DeviceName.Cpu);
        foreach (var completion in completions)
        {
            var single = (Completion)((object[])alone.Run(new[] { completion.Prompt }))[0];
            Assert.Equal(single.OutputIds, completion.OutputIds);
            Assert.Equal(source.Tokenizer!.Decode(completion.OutputIds), completion.Text);
        }
    }

    [Fact]
    public async Task Sentences_to_an_embedding_replica_match_sentence_transformers()
    {
        var source = AutoModelSource.Resolve(Folder("minilm-tiny"));
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "minilm-tiny", "sentences.json")));
        var sentences = json.RootElement.GetProperty("sentences").EnumerateArray().Select(s => s.GetString()!).ToArray();
        await using var runtime = await ReplicaRuntime.StartAsync([DeviceName.Cpu, DeviceName.Cpu, DeviceName.Cpu], source.Replica(InferenceTask.Embed, ScalarType.Float32, GenerationOptions.Greedy));

        var result = await runtime.Client.RunAsync(sentences, new JobOptions(MaxBatchSize: 1));

        Assert.True(Fixtures.MaxAbsDiff((Tensor)result.Results!, Expected("minilm-tiny", "embeddings")) <= 1e-4);
    }

    [Fact]
    public async Task A_decoders_staged_view_pipelines_to_the_fixture_logits()
    {
        var source = AutoModelSource.Resolve(Folder("llama3-tiny"));
        var staged = source.LoadStaged(InferenceTask.Logits);
        using var owned = staged as IDisposable;
        Assert.Equal(["embed_tokens", "layers.0", "layers.1", "layers.2", "norm+lm_head"], staged.Layers.Select(l => l.Name));
        var plan = Partitioner.Plan(staged.Layers, [DeviceName.Cpu, DeviceName.Cpu, DeviceName.Cpu], "layers.1,layers.2");
        await using var pipeline = await PipelineRuntime.StartAsync(staged, plan, ScalarType.Float32);

        var rows = TokenRows.Of(Expected("llama3-tiny", "input_ids"), Expected("llama3-tiny", "attention_mask"));
        var output = (Tensor)(await pipeline.RunAsync(rows, numChunks: 3)).Output;

        var real = Expected("llama3-tiny", "attention_mask").to(ScalarType.Bool);
        var diff = (output - Expected("llama3-tiny", "logits")).abs().amax([-1]).masked_select(real).max().ToDouble();
        Assert.True(diff <= 1e-4, $"max |diff| {diff:E3}");
    }
}
