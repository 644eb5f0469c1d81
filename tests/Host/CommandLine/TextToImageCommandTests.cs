using System.Text.Json.Nodes;
using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Host.Tests.CommandLine;

/// <summary>
/// <c>di infer --task text-to-image</c> on the sd-tiny fixture: the fixture's images (equal but for rounding ties) on one
/// device, on <c>--devices cpu,cpu</c> and across <c>di launch --num-processes 2</c>; PNGs and their index; bad input one
/// line, exit 2, nothing written.
/// </summary>
public sealed class TextToImageCommandTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-t2i-").FullName;

    public TextToImageCommandTests() => LibTorch.Initialize();

    private static string Fixture => Path.Combine(DiRunner.Fixtures, "sd-tiny");

    private static string Model => Path.Combine(Fixture, "model");

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static Tensor Expected(string name) => SafeTensorsFile.Open(Path.Combine(Fixture, "expected.safetensors")).Read(name);

    private static string[] Strings(string key) =>
        ((JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture, "prompts.json")))![key]!).Select(p => p!.GetValue<string>()).ToArray();

    // The fixture's guided runs: its prompts, negative prompts, latents, 32x48.
    private string[] FixtureRun(string scheduler, int steps)
    {
        var latents = Path.Combine(_folder, "latents.safetensors");
        if (!File.Exists(latents))
        {
            using var init = Expected("latents_init");
            SafeTensorsFile.Write(latents, new Dictionary<string, Tensor> { ["latents"] = init });
        }

        return ["--model", Model, "--task", "text-to-image", "--prompts", .. Strings("prompts"), "--negative-prompt", .. Strings("negative_prompt"),
            "--scheduler", scheduler, "--num-inference-steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--height", "32", "--width", "48", "--latents", latents];
    }

    private static void AssertFixtureImages(string run, string output)
    {
        using var images = SafeTensorsFile.Open(output).Read("images");
        using var expected = Expected($"{run}_image_uint8");
        using var expectedFloat = Expected($"{run}_image");
        Assert.Equal(expected.shape, images.shape);
        using var scope = NewDisposeScope();
        var diff = (images.to(ScalarType.Int32) - expected.to(ScalarType.Int32)).abs();
        Assert.True(diff.max().ToInt32() <= 1);
        var scaled = expectedFloat.permute(0, 2, 3, 1).to(ScalarType.Float64) * 255;
        var nearTie = ((scaled - scaled.floor()) - 0.5).abs().le(1e-3);
        Assert.Equal(0, diff.gt(0).logical_and(nearTie.logical_not()).sum().ToInt32());
    }

    [Theory]
    [InlineData("pndm", 4, "cpu")]
    [InlineData("euler", 3, "cpu,cpu")]
    public async Task The_fixture_images_come_back_on_one_and_two_devices(string scheduler, int steps, string devices)
    {
        var output = Path.Combine(_folder, $"{scheduler}.safetensors");
        var (exit, stdout, stderr) = await DiRunner.Run(["infer", .. FixtureRun(scheduler, steps), "--devices", devices, "--max-batch-size", "1", "--output", output]);
        Assert.True(exit == 0, stderr);
        Assert.Equal(string.Empty, stdout);
        Assert.Contains($"replica on {devices.Split(',').Length} device(s): 3 image(s) 48x32, {steps} steps", stderr);
        AssertFixtureImages(scheduler, output);
    }

    [Fact]
    public async Task Two_launched_node_processes_return_the_fixture_images()
    {
        var output = Path.Combine(_folder, "ddim.safetensors");
        var (exit, _, stderr) = await DiRunner.RunProcess(TimeSpan.FromMinutes(4), ["launch", "--num-processes", "2", "--", "infer", .. FixtureRun("ddim", 3), "--output", output], input: null);
        Assert.True(exit == 0, stderr);
        Assert.Contains("replica (cluster) on 2 device(s)", stderr);
        AssertFixtureImages("ddim", output);
    }

    [Fact]
    public async Task Output_dir_holds_one_png_per_prompt_and_an_index_equal_to_the_safetensors_images()
    {
        string[] common = ["infer", "--model", "sd-tiny", "--task", "text-to-image", "--prompts", "a dog", "a cat", "a chicken", "--num-inference-steps", "2", "--seed", "5"];
        var folder = Path.Combine(_folder, "images");
        var (exit, _, stderr) = await DiRunner.Run([.. common, "--output-dir", folder, "--devices", "cpu,cpu", "--apply-padding", "--max-batch-size", "1"]);
        Assert.True(exit == 0, stderr);
        var tensors = Path.Combine(_folder, "images.safetensors");
        (exit, _, stderr) = await DiRunner.Run([.. common, "--output", tensors, "--devices", "cpu,cpu", "--apply-padding", "--max-batch-size", "1"]);
        Assert.True(exit == 0, stderr);
        using var images = SafeTensorsFile.Open(tensors).Read("images");
        Assert.Equal([3L, 32, 32, 3], images.shape);
        var lines = File.ReadAllLines(Path.Combine(folder, "index.jsonl"));
        Assert.Equal(["""{"index":0,"prompt":"a dog","file":"image_0.png"}""", """{"index":1,"prompt":"a cat","file":"image_1.png"}""", """{"index":2,"prompt":"a chicken","file":"image_2.png"}"""], lines);
        for (var i = 0; i < 3; i++)
        {
            using var png = PngImage.Load(Path.Combine(folder, $"image_{i}.png"));
            using var row = images[i];
            using var differs = png.ne(row).any();
            Assert.False(differs.ToBoolean(), $"image_{i}.png differs from images[{i}]");
        }
    }

    // tests/fixtures/sd-second (a self-made SD 2.x-style config; no reference output exists for it) with random weights:
    // the same images, but for rounding ties, on one device and on two.
    [Fact]
    public async Task A_second_pipeline_gives_the_same_images_on_one_and_two_devices()
    {
        var model = Path.Combine(_folder, "second");
        var configs = Path.Combine(DiRunner.Fixtures, "sd-second");
        foreach (var file in Directory.EnumerateFiles(configs, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(model, Path.GetRelativePath(configs, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        StableDiffusionRandomWeights.Write(model, seed: 4);
        string[] job = ["infer", "--model", model, "--task", "text-to-image", "--prompts", "a red cube", "a blue sphere", "a green cone",
            "--negative-prompt", "blurry", "--num-inference-steps", "2", "--height", "40", "--width", "32", "--seed", "9"];
        var (one, two) = (Path.Combine(_folder, "one.safetensors"), Path.Combine(_folder, "two.safetensors"));
        var (exit, _, stderr) = await DiRunner.Run([.. job, "--output", one]);
        Assert.True(exit == 0, stderr);
        (exit, _, stderr) = await DiRunner.Run([.. job, "--devices", "cpu,cpu", "--max-batch-size", "1", "--apply-padding", "--output", two]);
        Assert.True(exit == 0, stderr);
        using var first = SafeTensorsFile.Open(one).Read("images");
        using var second = SafeTensorsFile.Open(two).Read("images");
        Assert.Equal([3L, 40, 32, 3], first.shape);
        using var diff = (first.to(ScalarType.Int32) - second.to(ScalarType.Int32)).abs();
        Assert.True(diff.max().ToInt32() <= 1);
        Assert.True(diff.gt(0).sum().ToInt32() <= diff.NumberOfElements / 100);
    }

    public static TheoryData<string[], string> BadInputs => new()
    {
        { ["--scheduler", "lms"], "di: error: unknown scheduler 'lms': use pndm, ddim, euler" },
        { ["--height", "33"], "di: error: --height and --width must be multiples of the VAE's scale factor 2, got 33x32" },
        { ["--mode", "pipeline"], "di: error: pipeline mode does not run text-to-image yet: use --mode replica (each device holds the whole Stable Diffusion pipeline)" },
        { ["--latents", "LATENTS"], "di: error: LATENTS: latents must be float [1, 4, 16, 16] for 1 prompt(s) at 32x32, got Float32 [1, 4, 8, 8]" },
        { ["--model", "BROKEN"], "di: error: BROKEN: component folder unet/ is missing (model_index.json names it)" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Bad_input_is_one_line_exit_2_and_nothing_written(string[] args, string message)
    {
        var latents = Path.Combine(_folder, "small.safetensors");
        using (var small = zeros(1, 4, 8, 8))
        {
            SafeTensorsFile.Write(latents, new Dictionary<string, Tensor> { ["latents"] = small });
        }

        var broken = Path.Combine(_folder, "broken");
        foreach (var file in Directory.EnumerateFiles(Model, "*", SearchOption.AllDirectories).Where(f => !f.Contains($"{Path.DirectorySeparatorChar}unet{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            var target = Path.Combine(broken, Path.GetRelativePath(Model, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        var output = Path.Combine(_folder, "out");
        string[] given = [.. args.Select(a => a.Replace("LATENTS", latents, StringComparison.Ordinal).Replace("BROKEN", broken, StringComparison.Ordinal))];
        string[] model = given.Contains("--model") ? [] : ["--model", Model];
        var (exit, stdout, stderr) = await DiRunner.Run(["infer", .. model, "--task", "text-to-image", "--prompts", "a dog", "--num-inference-steps", "2", "--output-dir", output, .. given]);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal(message.Replace("LATENTS", latents, StringComparison.Ordinal).Replace("BROKEN", broken, StringComparison.Ordinal), stderr.TrimEnd('\n'));
        Assert.False(Directory.Exists(output));
    }
}
