using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// samples/TextToImage (the first program of Accelerate's distributed inference guide in C#) under
/// <c>di launch --num-processes 2</c>, with README's command: each process saves the image of its prompt; with three
/// prompts and padding the last process drops its duplicate. Each image equals the one the pipeline makes for that prompt alone.
/// </summary>
public sealed class TextToImageSampleTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-t2i-sample-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    // README's command, "di" replaced by this build's di.dll, the project path made absolute.
    private async Task Launch(params string[] extra)
    {
        var root = DiRunner.RepositoryRoot();
        var command = File.ReadAllLines(Path.Combine(root, "README.md")).Single(l => l.StartsWith("di launch --num-processes 2 -- dotnet run --no-build --project samples/TextToImage", StringComparison.Ordinal));
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(w => w == "samples/TextToImage" ? Path.Combine(root, "samples", "TextToImage") : w).ToList();
        if (extra.Length > 0)
        {
            words.AddRange(["--", .. extra]);
        }

        var (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(4), words, input: null, Path.Combine(_folder, "config"), _folder);
        Assert.True(exit == 0, stderr);
    }

    private static void AssertImageOf(string prompt, string file)
    {
        LibTorch.Initialize();
        using var pipe = StableDiffusionPipeline.FromPretrained("sd-tiny");
        var alone = pipe.Call([prompt], new TextToImageOptions(NumInferenceSteps: 10))[0];
        using var saved = PngImage.Load(file);
        Assert.Equal([32L, 32, 3], saved.shape);
        using var diff = (saved.to(ScalarType.Int32) - alone.Pixels.to(ScalarType.Int32)).abs().max();
        Assert.True(diff.ToInt32() <= 1, $"{file} is not the image of '{prompt}'");
        alone.Dispose();
    }

    [Fact]
    public async Task Readmes_command_saves_one_image_per_process()
    {
        await Launch();
        AssertImageOf("a dog", Path.Combine(_folder, "result_0.png"));
        AssertImageOf("a cat", Path.Combine(_folder, "result_1.png"));
    }

    [Fact]
    public async Task With_three_prompts_and_padding_the_last_process_drops_its_duplicate()
    {
        await Launch("--padding");
        Assert.Equal(["result_0_0.png", "result_0_1.png", "result_1_0.png"], Directory.GetFiles(_folder, "*.png").Select(Path.GetFileName).Order());
        AssertImageOf("a chicken", Path.Combine(_folder, "result_1_0.png"));
    }
}
