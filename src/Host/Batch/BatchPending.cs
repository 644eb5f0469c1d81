using DistributedInference.Host.Serving;

namespace DistributedInference.Host.Batch;

/// <summary>
/// A batch request on its way: its units (choices, or embedding rows) finish in any order on any device; when the last
/// one does, the request's output line is made once (<see cref="Finished"/>). A failed unit fails the whole request.
/// Thread-safe: units of one request may finish in different jobs at once.
/// </summary>
public sealed class BatchPending
{
    private readonly object _gate = new();
    private readonly ChoiceResult?[] _choices;
    private readonly float[]?[] _vectors;
    private readonly string?[] _images;
    private readonly Action<BatchPending> _finished;
    private int _remaining;

    /// <param name="sequence">The request's place among the requests this run answers (for --ordered).</param>
    /// <param name="finished">Called once, on the thread of the last unit, when every unit is in or one failed.</param>
    public BatchPending(long sequence, BatchRequestLine line, PreparedGeneration? generation, PreparedEmbedding? embedding, PreparedImages? images, Action<BatchPending> finished)
    {
        Sequence = sequence;
        Line = line;
        Generation = generation;
        Embedding = embedding;
        Images = images;
        _finished = finished;
        _choices = new ChoiceResult?[generation?.Sequences.Count ?? 0];
        _vectors = new float[]?[embedding?.Rows.Count ?? 0];
        _images = new string?[images?.N ?? 0];
        _remaining = Units;
    }

    public long Sequence { get; }

    public BatchRequestLine Line { get; }

    public PreparedGeneration? Generation { get; }

    public PreparedEmbedding? Embedding { get; }

    public PreparedImages? Images { get; }

    /// <summary>Units: choices of a generation, rows of an embeddings request, images of an images request.</summary>
    public int Units => _choices.Length + _vectors.Length + _images.Length;

    /// <summary>Why the request failed (set once all units are in); null when it succeeded.</summary>
    public BatchError? Error { get; private set; }

    /// <summary>The response body once finished without error.</summary>
    public System.Text.Json.Nodes.JsonObject? Body { get; private set; }

    /// <summary>Prompt and generated tokens of a finished request (0 for a failed one).</summary>
    public (int Prompt, int Completion) Tokens { get; private set; }

    public void Complete(int unit, ChoiceResult choice) => Arrive(() => _choices[unit] = choice);

    public void Complete(int unit, float[] vector) => Arrive(() => _vectors[unit] = vector);

    /// <summary>Image <paramref name="unit"/>'s URL or base64 PNG.</summary>
    public void Complete(int unit, string image) => Arrive(() => _images[unit] = image);

    public void Fail(BatchError error) => Arrive(() => Error ??= error);

    private void Arrive(Action record)
    {
        lock (_gate)
        {
            record();
            if (--_remaining > 0)
            {
                return;
            }

            if (Error is null)
            {
                if (Generation is { } generation)
                {
                    Body = generation.Body(_choices!);
                    Tokens = (generation.PromptTokens, _choices.Sum(c => c!.Tokens.Count));
                }
                else if (Embedding is { } embedding)
                {
                    Body = embedding.Body(_vectors!);
                    Tokens = (embedding.Rows.Sum(r => r.Count), 0);
                }
                else
                {
                    Body = Images!.Body(_images!);
                }
            }
        }

        _finished(this);
    }
}
