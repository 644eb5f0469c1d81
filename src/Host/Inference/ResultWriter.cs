using System.Text;
using System.Text.Json;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// Writes a job's results, one per input in input order: a safetensors file (<c>logits</c>, <c>output_ids</c> for
/// generation, <c>embeddings</c> for embed), or JSON lines (a file, or stdout). Files are written whole or not at all.
/// Rows that failed alone are <c>{"index": i, "error": "..."}</c> lines in JSON lines; a safetensors output refuses
/// them (<see cref="JobFailedException"/>, nothing written) unless partial output is allowed, which adds a
/// <c>row_ok</c> tensor (uint8 [rows], 0 for a failed row, whose results are zeros).
/// </summary>
public sealed class ResultWriter
{
    private readonly string? _path;
    private readonly bool _jsonLines;
    private Action<Tensor>? _check;

    private ResultWriter(string? path, bool jsonLines)
    {
        _path = path;
        _jsonLines = jsonLines;
    }

    /// <summary>Checks the output path before any work is done.</summary>
    public static ResultWriter For(string? path)
    {
        if (path is null)
        {
            return new ResultWriter(null, jsonLines: true);
        }

        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not (".safetensors" or ".jsonl"))
        {
            throw new InvalidInputException($"--output {path}: use a .safetensors or .jsonl file");
        }

        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder))
        {
            throw new InvalidInputException($"--output {path}: folder {folder} does not exist");
        }

        if (Directory.Exists(path))
        {
            throw new InvalidInputException($"--output {path}: is a folder");
        }

        InputChecks.Writable("--output", path);

        return new ResultWriter(path, extension == ".jsonl");
    }

    /// <summary>Before writing, warn about NaN/Inf results on <paramref name="warnings"/>, or refuse them when <paramref name="strict"/>.</summary>
    public void CheckFinite(TextWriter warnings, bool strict) => _check = result => NonFiniteOutputs.Check(result, warnings, strict);

    /// <param name="result">The rows' results concatenated in input order: logits, generated token ids, or embeddings.</param>
    /// <param name="failedRows">Rows that failed alone (their places in <paramref name="result"/> hold zeros); none if null.</param>
    /// <param name="allowPartial">Write a safetensors output even with failed rows (with <c>row_ok</c>).</param>
    /// <exception cref="JobFailedException">Rows failed, the output is safetensors and partial output is not allowed.</exception>
    public void Write(InferenceTask task, InferenceInputs inputs, Tensor result, IModelSource model, TextWriter stdout, IReadOnlyList<RowFailure>? failedRows = null, bool allowPartial = false)
    {
        var failed = (failedRows ?? []).ToDictionary(f => f.Index, f => f.Error);
        if (!_jsonLines && failed.Count > 0 && !allowPartial)
        {
            throw new JobFailedException($"{FailedRows.Describe(failedRows!)}; nothing written to {_path} (--allow-partial writes the other rows and a row_ok tensor; a .jsonl output names each failed row)");
        }

        _check?.Invoke(result);
        if (!_jsonLines)
        {
            var name = task switch
            {
                InferenceTask.Generate => "output_ids",
                InferenceTask.Embed => "embeddings",
                _ => "logits",
            };
            var tensors = new Dictionary<string, Tensor> { [name] = result };
            using var rowOk = ones(inputs.Count, ScalarType.Byte);
            if (failed.Count > 0)
            {
                foreach (var row in failed.Keys)
                {
                    rowOk[row] = tensor((byte)0);
                }

                tensors["row_ok"] = rowOk;
            }

            SafeTensorsFile.Write(_path!, tensors, new Dictionary<string, string> { ["task"] = task.Name() });
            return;
        }

        var lines = new StringBuilder();
        for (var i = 0; i < inputs.Count; i++)
        {
            lines.AppendLine(failed.TryGetValue(i, out var error)
                ? JsonLines.Serialize(new Dictionary<string, object?> { ["index"] = i, ["error"] = error })
                : JsonLines.Serialize(Line(task, inputs, result, model, i)));
        }

        if (_path is null)
        {
            stdout.Write(lines.ToString());
            stdout.Flush();
            return;
        }

        AtomicFile.Write(_path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            writer.Write(lines.ToString());
        });
    }

    private static Dictionary<string, object?> Line(InferenceTask task, InferenceInputs inputs, Tensor result, IModelSource model, int row)
    {
        var tokenizer = model.Tokenizer;
        var line = new Dictionary<string, object?> { ["index"] = row };
        if (inputs.Prompts is { } prompts)
        {
            line["prompt"] = prompts[row];
        }

        var promptIds = PromptIds(inputs, row);
        switch (task)
        {
            case InferenceTask.Logits:
                var next = result[row, promptIds.Length - 1].argmax().ToInt64();
                line["tokens"] = promptIds.Length;
                line["next_token_id"] = next;
                if (tokenizer is not null && next < tokenizer.VocabularySize)
                {
                    line["next_token"] = tokenizer.Decode([next], skipSpecialTokens: false);
                }

                break;
            case InferenceTask.Classify:
                var logits = result[row].data<float>().ToArray();
                var label = Array.IndexOf(logits, logits.Max());
                line["label_id"] = label;
                line["label"] = label < model.LabelNames.Count ? model.LabelNames[label] : $"LABEL_{label}";
                line["logits"] = logits;
                break;
            case InferenceTask.Embed:
                line["embedding"] = result[row].data<float>().ToArray();
                break;
            default:
                var generated = Models.Generation.Continuation.Of(result[row], inputs.InputIds.shape[1], model.EosTokenIds);
                line["output_ids"] = generated;
                if (tokenizer is not null)
                {
                    line["completion"] = tokenizer.Decode(generated.Where(id => id < tokenizer.VocabularySize));
                }

                break;
        }

        return line;
    }

    private static long[] PromptIds(InferenceInputs inputs, int row)
    {
        var ids = inputs.InputIds[row].data<long>().ToArray();
        if (inputs.AttentionMask is null)
        {
            return ids;
        }

        var mask = inputs.AttentionMask[row].data<long>().ToArray();
        return ids.Where((_, t) => mask[t] != 0).ToArray();
    }
}
