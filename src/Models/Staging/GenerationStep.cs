using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>
/// One step of pipelined generation for one micro-batch (a "sequence group"), as it flows from stage to stage. The
/// first step (<see cref="Capacity"/> &gt; 0) is the prefill of the prompts; each later step carries one new token per
/// row. Every stage keeps the key/value cache of its own layers for <see cref="Sequence"/> between steps.
/// </summary>
/// <param name="Sequence">The micro-batch's id: keys each stage's cache.</param>
/// <param name="Hidden">Into the first stage: token ids [B, T] int64; between stages: the activation [B, T, hidden];
/// out of the last stage: float32 logits [B, vocab] of each row's last position, on the CPU.</param>
/// <param name="PositionIds">[B or 1, T] int64 positions of the new tokens.</param>
/// <param name="AttentionMask">[B, past + T] int64, 1 = real, 0 = padding; null when no row is padded.</param>
/// <param name="Capacity">On the prefill: positions per row at most (prompt + new tokens), for which each stage
/// allocates its cache; 0 on later steps.</param>
/// <param name="KeepRows">[B] int64: the rows of the previous step that go on (finished rows leave, their cache is
/// freed); null = all.</param>
/// <param name="Release">Frees the sequence's cache on every stage; nothing is computed.</param>
/// <param name="Paged">Set: a step of continuous batching, whose rows' keys and values live in a paged store named by
/// <see cref="Sequence"/> (a pool) on each stage; <see cref="Capacity"/> and <see cref="KeepRows"/> are unused.</param>
/// <param name="Lost">Set by a stage that holds no store for a paged step's pool (it was lost with a stage and the
/// pipeline planned again): nothing was computed, and the stages after it pass the step on unchanged.</param>
public sealed record GenerationStep(
    string Sequence,
    Tensor Hidden,
    Tensor PositionIds,
    Tensor? AttentionMask,
    long Capacity,
    Tensor? KeepRows = null,
    bool Release = false,
    PagedStep? Paged = null,
    bool Lost = false)
{
    private const string SequenceKey = "generation_sequence";
    private const string HiddenKey = "hidden";
    private const string PositionsKey = "position_ids";
    private const string MaskKey = "attention_mask";
    private const string CapacityKey = "capacity";
    private const string KeepRowsKey = "keep_rows";
    private const string ReleaseKey = "release";
    private const string PastSlotsKey = "paged_past_slots";
    private const string NewSlotsKey = "paged_new_slots";
    private const string BlocksKey = "paged_blocks";
    private const string BlockSizeKey = "paged_block_size";
    private const string CreateKey = "paged_create";
    private const string LostKey = "paged_lost";

    /// <summary>A step that frees <paramref name="sequence"/>'s cache on every stage.</summary>
    public static GenerationStep Free(string sequence) => new(sequence, empty(0, ScalarType.Int64), empty(0, ScalarType.Int64), null, 0, null, Release: true);

    /// <summary>The step as a dictionary of plain values and tensors: what crosses nodes (no new wire type).</summary>
    public IReadOnlyDictionary<string, object> ToPayload()
    {
        var payload = new Dictionary<string, object>
        {
            [SequenceKey] = Sequence,
            [HiddenKey] = Hidden,
            [PositionsKey] = PositionIds,
            [CapacityKey] = Capacity,
            [ReleaseKey] = Release,
        };
        if (AttentionMask is not null)
        {
            payload[MaskKey] = AttentionMask;
        }

        if (KeepRows is not null)
        {
            payload[KeepRowsKey] = KeepRows;
        }

        if (Paged is not null)
        {
            payload[PastSlotsKey] = Paged.PastSlots;
            payload[NewSlotsKey] = Paged.NewSlots;
            payload[BlocksKey] = Paged.Blocks;
            payload[BlockSizeKey] = Paged.BlockSize;
            payload[CreateKey] = Paged.Create;
            payload[LostKey] = Lost;
        }

        return payload;
    }

    /// <summary>Reads a step from <see cref="ToPayload"/>'s dictionary; false for any other payload.</summary>
    /// <exception cref="InvalidInputException">A generation payload with a missing or mistyped member.</exception>
    public static bool TryRead(object payload, out GenerationStep step)
    {
        step = null!;
        if (payload is not IReadOnlyDictionary<string, object> named || !named.TryGetValue(SequenceKey, out var sequence))
        {
            return false;
        }

        T Get<T>(string key) => named.TryGetValue(key, out var value) && value is T typed
            ? typed
            : throw new InvalidInputException($"generation step: {key} is missing or not a {typeof(T).Name}");
        Tensor? Optional(string key) => named.TryGetValue(key, out var value) ? value as Tensor : null;
        long Number(string key) => Convert.ToInt64(Get<object>(key), System.Globalization.CultureInfo.InvariantCulture);
        var paged = named.ContainsKey(PastSlotsKey)
            ? new PagedStep(Get<Tensor>(PastSlotsKey), Get<Tensor>(NewSlotsKey), Number(BlocksKey), Number(BlockSizeKey), Get<bool>(CreateKey))
            : null;
        step = new GenerationStep(
            sequence as string ?? throw new InvalidInputException("generation step: the sequence id is not a string"),
            Get<Tensor>(HiddenKey),
            Get<Tensor>(PositionsKey),
            Optional(MaskKey),
            Number(CapacityKey),
            Optional(KeepRowsKey),
            Get<bool>(ReleaseKey),
            paged,
            paged is not null && Get<bool>(LostKey));
        return true;
    }
}
