using System.Globalization;
using System.Text.Json.Nodes;
using DistributedInference.Host.Serving;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Diffusion;

namespace DistributedInference.Host.Batch;

/// <summary>
/// A text-to-image request of a batch, <c>POST /v1/images/generations</c>: OpenAI's body (<c>prompt</c>, <c>n</c> 1-10,
/// <c>size</c> "WxH", <c>response_format</c> <c>url</c> or <c>b64_json</c>, <c>user</c>) with diffusers'
/// <c>StableDiffusionPipeline</c> parameters (<c>negative_prompt</c>, <c>num_inference_steps</c>, <c>guidance_scale</c>,
/// <c>scheduler</c>: pndm, ddim, euler; <c>seed</c>). Image i of the request starts from latents drawn from the seed and
/// row index i, as <c>di infer --task text-to-image --seed S</c> draws its i-th prompt's, so the same body gives the
/// same images alone, in any job, on any device. With <c>url</c> each image is a PNG file in the folder next to the
/// output, its <c>file://</c> URL in the body.
/// </summary>
/// <param name="Body">The response body of the images' URLs or base64 PNGs, in image order.</param>
public sealed record PreparedImages(string Prompt, string NegativePrompt, int N, TextToImageOptions Options, bool Base64, Func<IReadOnlyList<string>, JsonObject> Body)
{
    /// <summary>Largest height or width a batch draws (a 16384x16384 image needs more memory than a machine has).</summary>
    public const int MaxSide = 2048;

    /// <summary>Checks an images body (every field read, the rest refused).</summary>
    /// <param name="defaultSeed">The seed of a body without one.</param>
    /// <exception cref="ApiException">400 naming the field.</exception>
    public static PreparedImages Prepare(RequestFields fields, ServedModel model, long defaultSeed)
    {
        var source = ((StableDiffusionModelSource)model.Source).Source;
        var prompt = fields.String("prompt") is { Length: > 0 } p ? p : throw ApiException.BadRequest("'prompt' is required and must be a non-empty string.", "prompt");
        var negative = fields.String("negative_prompt") ?? string.Empty;
        var n = (int)(fields.Integer("n", 1, 10) ?? 1);
        var format = fields.String("response_format") ?? "url";
        if (format is not ("url" or "b64_json"))
        {
            throw ApiException.BadRequest("'response_format' must be url or b64_json.", "response_format");
        }

        int? height = null;
        int? width = null;
        if (fields.String("size") is { } size)
        {
            var parts = size.Split('x');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var w)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var h) || w < 1 || h < 1 || w > MaxSide || h > MaxSide)
            {
                throw ApiException.BadRequest($"'size' must be WIDTHxHEIGHT, each 1 to {MaxSide} pixels.", "size");
            }

            (height, width) = (h, w);
        }

        var steps = (int)(fields.Integer("num_inference_steps", 1, 1000) ?? 50);
        var guidance = fields.Number("guidance_scale", 0, 100) ?? 7.5;
        var scheduler = fields.String("scheduler");
        var seed = fields.Integer("seed") ?? defaultSeed;
        fields.String("user");
        fields.RefuseTheRest();
        TextToImageOptions options;
        try
        {
            options = new TextToImageOptions(steps, guidance, scheduler?.Trim().ToLowerInvariant(), height, width, seed).Validate();
            var (h, w, _, _) = StableDiffusionPipeline.Size(source, options);
            source.Scheduler(options.Scheduler);
            options = options with { Height = h, Width = w };
        }
        catch (InvalidInputException e) when (scheduler is not null && e.Message.Contains("scheduler", StringComparison.OrdinalIgnoreCase))
        {
            throw ApiException.BadRequest(e.Message, "scheduler");
        }
        catch (InvalidInputException e)
        {
            throw ApiException.BadRequest($"'size' {width?.ToString(CultureInfo.InvariantCulture) ?? "default"}x{height?.ToString(CultureInfo.InvariantCulture) ?? "default"} cannot be drawn by this pipeline: {e.Message.Replace("--height and --width", "height and width", StringComparison.Ordinal)}", "size");
        }

        var created = OpenAIJson.Now();
        JsonObject Body(IReadOnlyList<string> images) => new()
        {
            ["created"] = created,
            ["data"] = new JsonArray(images.Select(image => (JsonNode?)new JsonObject { [format == "url" ? "url" : "b64_json"] = image }).ToArray()),
        };

        return new PreparedImages(prompt, negative, n, options, format == "b64_json", Body);
    }

    /// <summary>The PNG file of image <paramref name="index"/> of a request: a name made of its custom_id, safe on any file system.</summary>
    public static string FileName(string customId, int index)
    {
        var safe = new string(customId.Take(64).Select((c, i) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' || (c == '.' && i > 0) ? c : '_').ToArray());
        return string.Create(CultureInfo.InvariantCulture, $"{safe}-{(ulong)BatchInput.Key(customId):x16}-{index}.png");
    }

    /// <summary>The folder of a batch's images: next to its output, named after it (<c>out.jsonl</c>: <c>out.jsonl.images</c>).</summary>
    public static string Folder(string output) => Path.GetFullPath(output) + ".images";

    /// <summary>The <c>file://</c> URL of a local path, each segment escaped (a <c>%</c> in a folder name stays one).</summary>
    public static string FileUrl(string path) => "file://" + string.Join('/', Path.GetFullPath(path).Split('/').Select(Uri.EscapeDataString));

}
