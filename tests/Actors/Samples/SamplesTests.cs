using System.Text.RegularExpressions;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using DistributedInference.Samples.ClusterNode;
using DistributedInference.Samples.Pipeline;
using DistributedInference.Samples.ReplicaHost;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Samples;

/// <summary>
/// The programs under samples/ (built with the solution) run on the fixtures, and README's C# snippets are their code,
/// quoted: a snippet that is not found in the file README names before it fails here.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed partial class SamplesTests
{
    public SamplesTests() => LibTorch.Initialize();

    private static string Folder(string fixture) => Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "model");

    private static Tensor Expected(string fixture, string name) =>
        SafeTensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "expected.safetensors")).Read(name);

    [Fact]
    public async Task The_replica_host_sample_generates_for_every_prompt_what_one_replica_generates_for_it_alone()
    {
        string[] prompts = ["a zebra met a quokka", "hello", "Hello, world! 123"];
        var completions = await ReplicaHostSample.RunAsync(Folder("qwen2-tiny"), prompts, maxNewTokens: 4);

        Assert.Equal(prompts, completions.Select(c => c.Prompt));
        var source = AutoModelSource.Resolve(Folder("qwen2-tiny"));
        using var alone = source.Replica(InferenceTask.Generate, ScalarType.Float32, new GenerationOptions(MaxNewTokens: 4))(DeviceName.Cpu);
        Assert.All(completions, c => Assert.Equal(((Completion)((object[])alone.Run(new[] { c.Prompt }))[0]).OutputIds, c.OutputIds));
    }

    [Fact]
    public async Task The_pipeline_sample_reproduces_the_fixture_logits()
    {
        var mask = Expected("llama3-tiny", "attention_mask");
        var (logits, bubble) = await PipelineSample.RunAsync(Folder("llama3-tiny"), Expected("llama3-tiny", "input_ids"), mask);

        var diff = (logits - Expected("llama3-tiny", "logits")).abs().amax([-1]).masked_select(mask.to(ScalarType.Bool)).max().ToDouble();
        Assert.True(diff <= 1e-4, $"max |diff| {diff:E3}");
        Assert.InRange(bubble, 0, 1);
    }

    [Fact]
    public async Task The_cluster_node_sample_runs_a_job_on_its_own_one_node_cluster()
    {
        var logits = await ClusterNodeSample.RunAsync(Path.Combine(AppContext.BaseDirectory, "fixtures", "gpt2-tiny", "lm"), Fixtures.Expected("input_ids"));
        Assert.True(Fixtures.MaxAbsDiff(logits, Fixtures.Expected("lm_logits")) <= 1e-4);
    }

    [Fact]
    public void Every_csharp_snippet_in_the_readme_is_quoted_from_the_sample_file_it_names()
    {
        var root = RepositoryRoot();
        var readme = File.ReadAllLines(Path.Combine(root, "README.md"));
        var snippets = 0;
        for (var i = 0; i < readme.Length; i++)
        {
            if (readme[i].Trim() != "```csharp")
            {
                continue;
            }

            var end = Array.FindIndex(readme, i + 1, l => l.Trim() == "```");
            var block = readme[(i + 1)..end];
            // The paragraph just before the snippet names the file it quotes.
            var last = Array.FindLastIndex(readme, i - 1, l => l.Trim().Length > 0);
            var first = Array.FindLastIndex(readme, last, l => l.Trim().Length == 0 || l.StartsWith("```", StringComparison.Ordinal)) + 1;
            var before = string.Join(' ', readme[first..(last + 1)]);
            var named = SamplePath().Match(before);
            Assert.True(named.Success, $"README line {i + 1}: the paragraph before a C# snippet names no samples/ file it quotes: {before}");
            var file = File.ReadAllLines(Path.Combine(root, named.Value));
            Assert.True(Quotes(file, block), $"README line {i + 1}: the snippet is not a run of lines of {named.Value}");
            snippets++;
            i = end;
        }

        Assert.True(snippets >= 3, $"{snippets} C# snippets in README");
    }

    // The block's lines are consecutive lines of the file, less one common indentation.
    private static bool Quotes(string[] file, string[] block)
    {
        for (var start = 0; start + block.Length <= file.Length; start++)
        {
            var indent = file[start].Length - block[0].Length;
            if (indent < 0 || file[start][indent..] != block[0] || file[start][..indent].Trim().Length > 0)
            {
                continue;
            }

            var all = true;
            for (var j = 1; j < block.Length && all; j++)
            {
                var line = file[start + j];
                all = block[j].Length == 0 ? line.Trim().Length == 0 : line.Length >= indent && line[..indent].Trim().Length == 0 && line[indent..] == block[j];
            }

            if (all)
            {
                return true;
            }
        }

        return false;
    }

    private static string RepositoryRoot()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "DistributedInference.sln")))
        {
            folder = folder.Parent;
        }

        return folder?.FullName ?? throw new InvalidOperationException("no DistributedInference.sln above the test output");
    }

    [GeneratedRegex(@"samples/[A-Za-z]+/[A-Za-z]+\.cs")]
    private static partial Regex SamplePath();
}
