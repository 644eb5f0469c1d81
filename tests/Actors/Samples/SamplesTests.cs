using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Samples;

/// <summary>
/// The programs under samples/ (built with the solution) run on the fixtures as a user runs them, and README's C#
/// snippets are those programs, whole: each snippet is its file from the first <c>using</c> to the end, so it compiles
/// when pasted into a new console app (the solution build compiles every one of them), and a snippet that is not its
/// file fails here.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed partial class SamplesTests
{
    public SamplesTests() => LibTorch.Initialize();

    private static string Folder(string fixture) => Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "model");

    private static Tensor Expected(string fixture, string name) =>
        SafeTensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "expected.safetensors")).Read(name);

    // Runs a sample program as a user does (dotnet SAMPLE.dll ARGS), built beside the tests.
    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunSample(string name, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, name + ".dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task The_replica_host_sample_generates_for_every_prompt_what_one_replica_generates_for_it_alone()
    {
        string[] prompts = ["a zebra met a quokka", "hello", "Hello, world! 123"];
        var (exit, stdout, stderr) = await RunSample("ReplicaHost", [Folder("qwen2-tiny"), .. prompts]);
        Assert.True(exit == 0, stderr);

        // Only results on stdout (the host's log lines go to stderr): one JSON line per prompt, in prompt order.
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(prompts, lines.Select(l => l.GetProperty("prompt").GetString()));
        Assert.Contains("Application started", stderr, StringComparison.Ordinal);
        var source = AutoModelSource.Resolve(Folder("qwen2-tiny"));
        using var alone = source.Replica(InferenceTask.Generate, ScalarType.Float32, new GenerationOptions(MaxNewTokens: 8))(DeviceName.Cpu);
        Assert.All(lines, l => Assert.Equal(
            ((Completion)((object[])alone.Run(new[] { l.GetProperty("prompt").GetString()! }))[0]).OutputIds,
            l.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt64())));
    }

    [Fact]
    public async Task The_pipeline_sample_reproduces_the_fixture_logits()
    {
        var input = Path.Combine(Path.GetTempPath(), $"di-pipeline-sample-{Guid.NewGuid():N}.safetensors");
        var output = Path.ChangeExtension(input, ".out.safetensors");
        try
        {
            var mask = Expected("llama3-tiny", "attention_mask");
            SafeTensorsFile.Write(input, new Dictionary<string, Tensor> { ["input_ids"] = Expected("llama3-tiny", "input_ids"), ["attention_mask"] = mask });
            var (exit, stdout, stderr) = await RunSample("Pipeline", Folder("llama3-tiny"), input, output);
            Assert.True(exit == 0, stderr);
            Assert.Matches(@"^logits \[3, 12, 640\] through 3 stages, bubble fraction [01]\.\d{3}$", stdout.Trim());

            using var logits = SafeTensorsFile.Open(output).Read("logits");
            var diff = (logits - Expected("llama3-tiny", "logits")).abs().amax([-1]).masked_select(mask.to(ScalarType.Bool)).max().ToDouble();
            Assert.True(diff <= 1e-4, $"max |diff| {diff:E3}");
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }

    [Fact]
    public async Task The_cluster_node_sample_runs_a_job_on_its_own_one_node_cluster()
    {
        var model = Path.Combine(AppContext.BaseDirectory, "fixtures", "gpt2-tiny", "lm");
        var (exit, stdout, stderr) = await RunSample("ClusterNode", model);
        Assert.True(exit == 0, stderr);

        using var lm = Models.Gpt2.Gpt2Source.Resolve(model).CreateLanguageModel(CPU, ScalarType.Float32);
        using var logits = lm.Logits(tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, [2, 4]));
        Assert.Equal($"next token ids: {string.Join(" ", logits.select(1, -1).argmax(-1).data<long>().ToArray())}", stdout.Trim());
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
            var program = file[Array.FindIndex(file, l => l.StartsWith("using ", StringComparison.Ordinal))..];
            Assert.True(program.SequenceEqual(block), $"README line {i + 1}: the snippet is not the whole program {named.Value} from its first using line");
            snippets++;
            i = end;
        }

        Assert.True(snippets >= 3, $"{snippets} C# snippets in README");
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

    [GeneratedRegex(@"samples/[A-Za-z]+/Program\.cs")]
    private static partial Regex SamplePath();
}
