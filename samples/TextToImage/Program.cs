// dotnet build samples/TextToImage, then
// di launch --num-processes 2 -- dotnet run --no-build --project samples/TextToImage [-- --model DIR] [--padding | --gather]
// The first program of Accelerate's distributed inference guide in C#, line for line: every process loads the pipeline
// on its device, generates the image of its share of ["a dog", "a cat"] and saves result_{process_index}.png.
// --padding: the guide's three prompts with apply_padding=True; the last process drops its duplicate.
// --gather: Accelerate's example-zoo variant: shares in batches, the images gathered to the main process, which saves them.
// By default the tiny built-in pipeline (random weights, nothing downloaded); results go to the current folder.
using DistributedInference.Actors.Processes;
using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

LibTorch.Initialize();
var model = args.SkipWhile(a => a != "--model").Skip(1).FirstOrDefault() ?? "sd-tiny";
var options = new TextToImageOptions(NumInferenceSteps: model == "sd-tiny" ? 10 : 50);

if (args.Contains("--padding"))
{
    await Padding(model, options);
    return;
}

if (args.Contains("--gather"))
{
    await Gather(model, options);
    return;
}

using var pipe = StableDiffusionPipeline.FromPretrained(model, ScalarType.Float32);
await using var distributedState = await ProcessState.FromEnvironmentAsync();
pipe.To(distributedState.Device);

// Assume two processes
var prompt = distributedState.SplitBetweenProcesses(["a dog", "a cat"]);
var result = pipe.Call(prompt, options)[0];
result.Save($"result_{distributedState.ProcessIndex}.png");

static async Task Padding(string model, TextToImageOptions options)
{
    using var pipe = StableDiffusionPipeline.FromPretrained(model, ScalarType.Float32);
    await using var distributedState = await ProcessState.FromEnvironmentAsync();
    pipe.To(distributedState.Device);

    string[] prompts = ["a dog", "a cat", "a chicken"];
    var share = distributedState.SplitBetweenProcesses(prompts, applyPadding: true);
    var result = pipe.Call(share, options);

    // The last process got "a chicken" twice: drop the duplicate, as the guide says.
    var real = distributedState.SplitBetweenProcesses(prompts).Count;
    for (var i = 0; i < real; i++)
    {
        result[i].Save($"result_{distributedState.ProcessIndex}_{i}.png");
    }
}

static async Task Gather(string model, TextToImageOptions options)
{
    using var pipe = StableDiffusionPipeline.FromPretrained(model, ScalarType.Float32);
    await using var distributedState = await ProcessState.FromEnvironmentAsync();
    pipe.To(distributedState.Device);

    string[] prompts = ["a dog", "a cat", "a chicken", "a horse", "a cow"];
    const int BatchSize = 2;
    var mine = distributedState.SplitBetweenProcesses(prompts, applyPadding: true);
    var images = new List<Tensor>();
    foreach (var batch in mine.Chunk(BatchSize))
    {
        images.AddRange(pipe.Call(batch, options).Select(image => image.Pixels));
    }

    var all = distributedState.Gather(images, prompts.Length, applyPadding: true);
    if (distributedState.IsMainProcess)
    {
        for (var i = 0; i < all.Count; i++)
        {
            PngImage.Save(all[i], $"image_{i}.png");
        }
    }

    distributedState.Print($"saved {all.Count} images");
}
