using DistributedInference.Models;

namespace DistributedInference.Host.Inference;

/// <summary>
/// The files a <c>di infer</c> job writes (<c>--output</c>, <c>--json-summary</c>) are checked before any compute: each
/// is a file in an existing folder, they are not the same file, and neither is a file the job reads (<c>--input-ids</c>,
/// <c>--prompts-file</c>, a file of the model folder, the secret or the certificate), which writing would destroy.
/// Paths are compared after resolving symbolic links.
/// </summary>
public static class OutputPaths
{
    /// <exception cref="InvalidInputException">One line naming the option and path at fault.</exception>
    public static void Check(InferOptions options)
    {
        var outputs = new List<(string Option, string Path)>();
        if (options.OutputPath is { } output)
        {
            outputs.Add(("--output", output));
        }

        if (options.JsonSummaryPath is { } summary)
        {
            outputs.Add(("--json-summary", summary));
        }

        foreach (var (option, path) in outputs)
        {
            if (Directory.Exists(path))
            {
                throw new InvalidInputException($"{option} {path}: is a folder; give a file to write");
            }

            var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            if (!Directory.Exists(folder))
            {
                throw new InvalidInputException($"{option} {path}: folder {folder} does not exist");
            }
        }

        if (outputs.Count == 2 && Same(outputs[0].Path, outputs[1].Path))
        {
            throw new InvalidInputException($"--json-summary {outputs[1].Path}: is also --output; the summary would replace the results: give it a file of its own");
        }

        var inputs = Inputs(options).ToList();
        foreach (var (option, path) in outputs)
        {
            foreach (var (what, input) in inputs)
            {
                if (Same(path, input))
                {
                    throw new InvalidInputException($"{option} {path}: is {what}, which the job reads; writing there would destroy it: give another file");
                }
            }
        }
    }

    private static IEnumerable<(string What, string Path)> Inputs(InferOptions options)
    {
        if (options.InputIdsPath is { } ids)
        {
            yield return ("the --input-ids file", ids);
        }

        if (options.PromptsFile is { } prompts)
        {
            yield return ("the --prompts-file", prompts);
        }

        if (options.SecretFile is { } secret)
        {
            yield return ("the --secret-file", secret);
        }

        if (options.TlsCertificate is { } certificate)
        {
            yield return ("the --tls-certificate", certificate);
        }

        if (Directory.Exists(options.Model))
        {
            foreach (var file in Directory.EnumerateFiles(options.Model, "*", SearchOption.AllDirectories))
            {
                yield return ($"a file of the model folder ({Path.GetRelativePath(options.Model, file)})", file);
            }
        }
    }

    private static bool Same(string a, string b) => string.Equals(Resolved(a), Resolved(b), StringComparison.Ordinal);

    private static string Resolved(string path)
    {
        var full = Path.GetFullPath(path);
        try
        {
            return File.Exists(full) && new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true) is { } target ? target.FullName : full;
        }
        catch (IOException)
        {
            return full;
        }
    }
}
