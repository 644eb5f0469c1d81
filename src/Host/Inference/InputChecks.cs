using DistributedInference.Models;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>Checks of what the user gives a job, each failing with one line that names the file, line or tensor at fault.</summary>
public static class InputChecks
{
    /// <summary>An <c>attention_mask</c> holds only 0 (padding) and 1 (a real token); 7 is not taken as 1.</summary>
    /// <param name="mask">Any integer or bool dtype, any shape; not disposed.</param>
    /// <exception cref="InvalidInputException">A value other than 0 or 1, naming the first one and its position.</exception>
    public static void AttentionMask(string path, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var values = mask.to(ScalarType.Int64);
        var bad = values.ne(0).logical_and(values.ne(1)).nonzero();
        if (bad.shape[0] > 0)
        {
            var at = bad[0].data<long>().ToArray();
            throw new InvalidInputException(
                $"{path}: attention_mask[{string.Join(", ", at)}] is {values[at.Select(i => TensorIndex.Single(i)).ToArray()].ToInt64()}; use 1 for a real token and 0 for padding");
        }

        if (values.dim() == 2 && values.shape[1] > 0)
        {
            var empty = values.sum(1).eq(0).nonzero();
            if (empty.shape[0] > 0)
            {
                throw new InvalidInputException($"{path}: attention_mask row {empty[0, 0].ToInt64()} has no real token (all 0)");
            }
        }
    }

    /// <summary>
    /// The prompts of a <c>--prompts-file</c>, one a line, so that each result's <c>index</c> is its line number minus one.
    /// A blank line would shift that mapping, so it is an error naming the line.
    /// </summary>
    /// <exception cref="InvalidInputException">No such file, no prompts, or a blank line (by its 1-based number).</exception>
    public static IReadOnlyList<string> PromptLines(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"{path}: no such file");
        }

        var lines = File.ReadAllLines(path);
        if (lines.Length == 0)
        {
            throw new InvalidInputException($"{path}: no prompts (one prompt a line)");
        }

        var blank = Array.FindIndex(lines, string.IsNullOrWhiteSpace);
        if (blank >= 0)
        {
            throw new InvalidInputException($"{path}: line {blank + 1} is blank; give one prompt a line (each result's index is its line number - 1)");
        }

        return lines;
    }

    /// <summary>
    /// Checks before any compute that a file can be created in <paramref name="path"/>'s folder (a folder of another
    /// user, a read-only mount, <c>/proc</c>), by creating and deleting an empty file beside it.
    /// </summary>
    /// <param name="option">How the user gave the path, for the error: <c>--output</c>.</param>
    /// <exception cref="InvalidInputException">The folder does not take new files.</exception>
    public static void Writable(string option, string path)
    {
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        var probe = Path.Combine(folder, $".{Path.GetFileName(full)}.{Environment.ProcessId}.probe");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"{option} {path}: cannot write in folder {folder} ({e.GetType().Name}: {e.Message.Split('\n', 2)[0].Trim()})", e);
        }
    }
}
