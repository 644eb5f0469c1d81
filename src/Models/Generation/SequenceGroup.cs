using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// The rows of one micro-batch generated through a pipeline, step by step: what <see cref="GenerationLoop"/> does,
/// cut where the model runs elsewhere. <see cref="Start"/> gives the prefill step; each <see cref="Next"/> takes the
/// logits the last stage returned, picks every active row's token (greedy, or sampling with a generator per row seeded
/// by the row's seed, <see cref="RowSeeds"/>, as replica mode does, so the same rows sample the same tokens), and gives the
/// next step, in which rows that emitted an end-of-sequence id no longer take part (the stages free their cache rows).
/// Prompts may be padded on either side (moved to the left); positions are cumsum(mask) - 1 as <c>generate</c> feeds them.
/// </summary>
public sealed class SequenceGroup : IDisposable
{
    private readonly GenerationOptions _options;
    private readonly long[] _ends;
    private readonly Tensor _tokens;
    private readonly Tensor? _mask;
    private readonly long[] _nextPosition;
    private readonly RowSampler[]? _samplers;
    private readonly long _promptLength;
    private readonly List<Tensor> _stepTensors = [];
    private List<int> _active;
    private int _length;
    private int _resumes;

    /// <param name="id">Names the group's caches on the stages (unique among the groups in flight).</param>
    /// <param name="inputIds">[B, T] int64 prompts (read, not kept).</param>
    /// <param name="attentionMask">[B, T], 1 = real, 0 = padding (either side); null when nothing is padded.</param>
    /// <param name="rowSeeds">Each row's sampling seed ([B]); null: <see cref="RowSeeds.Derive"/> from options.Seed and each row's real tokens.</param>
    /// <param name="options">Greedy or sampling, max_new_tokens, seed.</param>
    /// <param name="endOfSequenceIds">Ids that end a row.</param>
    /// <param name="padTokenId">The id written after a row's end.</param>
    /// <exception cref="InvalidInputException">Impossible options, or a mask or row seeds of the wrong shape.</exception>
    public SequenceGroup(string id, Tensor inputIds, Tensor? attentionMask, IReadOnlyList<long>? rowSeeds, GenerationOptions options, IReadOnlyList<long> endOfSequenceIds, long padTokenId)
    {
        options.Validate();
        var (batch, promptLength) = (inputIds.shape[0], inputIds.shape[1]);
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputIds.shape))
        {
            throw new InvalidInputException($"attention_mask is [{string.Join(", ", attentionMask.shape)}] but input_ids is [{string.Join(", ", inputIds.shape)}]");
        }

        if (rowSeeds is not null && rowSeeds.Count != batch)
        {
            throw new InvalidInputException($"row seeds have {rowSeeds.Count} entries for {batch} rows");
        }

        Id = id;
        _options = options;
        _ends = endOfSequenceIds.ToArray();
        _promptLength = promptLength;
        using var scope = NewDisposeScope();
        var ids = inputIds.to(ScalarType.Int64).cpu();
        var mask = attentionMask?.to(ScalarType.Int64).cpu();
        if (mask is not null && !mask.eq(0).any().ToBoolean())
        {
            mask = null;
        }

        if (mask is not null)
        {
            (ids, mask) = LeftPadding.Apply(ids, mask);
        }

        var total = promptLength + options.MaxNewTokens;
        _tokens = full([batch, total], padTokenId, ScalarType.Int64);
        _tokens.narrow(1, 0, promptLength).copy_(ids);
        _tokens.DetachFromDisposeScope();
        if (mask is not null)
        {
            _mask = ones([batch, total], ScalarType.Int64);
            _mask.narrow(1, 0, promptLength).copy_(mask);
            _mask.DetachFromDisposeScope();
            _nextPosition = mask.sum(1).data<long>().ToArray();
        }
        else
        {
            _nextPosition = Enumerable.Repeat(promptLength, (int)batch).ToArray();
        }

        _samplers = options.DoSample ? (rowSeeds ?? RowSeeds.Derive(options.Seed, ids, mask)).Select(seed => new RowSampler([seed])).ToArray() : null;
        _active = Enumerable.Range(0, (int)batch).ToList();
        _length = (int)promptLength;
    }

    /// <summary>The group's id; a resumed group's caches get <c>id/rN</c>.</summary>
    public string Id { get; }

    /// <summary>The id of the caches the stages hold for this group now.</summary>
    public string Sequence => _resumes == 0 ? Id : $"{Id}/r{_resumes}";

    /// <summary>Rows still generating (indices into the group's rows).</summary>
    public IReadOnlyList<int> ActiveRows => _active;

    /// <summary>Steps whose logits were taken.</summary>
    public int Steps { get; private set; }

    /// <summary>New tokens picked, over all rows (a finished row's end-of-sequence id counts; the pads after it do not).</summary>
    public long NewTokens { get; private set; }

    /// <summary>True once every row has ended or max_new_tokens steps were taken.</summary>
    public bool Done => _active.Count == 0 || Steps == _options.MaxNewTokens;

    /// <summary>[B, T + max_new_tokens] int64 on the CPU: prompts (left-padded), new tokens, pads; the group's (clone to keep).</summary>
    public Tensor Output => _tokens;

    /// <summary>The prefill step: every prompt position, with room for the new tokens.</summary>
    public GenerationStep Start() => Prefill();

    /// <summary>
    /// Takes the last stage's logits for the rows of the previous step and picks their tokens; returns the next step,
    /// or null when the group is <see cref="Done"/> (then send <see cref="Release"/>).
    /// </summary>
    /// <param name="logits">[active rows, vocab] float32 logits of the rows' last positions; read, not kept.</param>
    /// <exception cref="InvalidOperationException">The group is done, or the logits have another number of rows.</exception>
    /// <exception cref="NonFiniteLogitsException">An active row's logits hold NaN or Inf.</exception>
    public GenerationStep? Next(Tensor logits)
    {
        if (Done)
        {
            throw new InvalidOperationException($"sequence group {Id} is done");
        }

        if (logits.shape[0] != _active.Count)
        {
            throw new InvalidOperationException($"sequence group {Id}: logits for {logits.shape[0]} rows, {_active.Count} active");
        }

        ReleaseStepTensors();
        long[] chosen;
        using (var scope = NewDisposeScope())
        {
            var scores = logits.to(ScalarType.Float32).cpu();
            NonFiniteLogitsException.ThrowIfAny(scores, null, Steps, null);
            if (_samplers is null)
            {
                chosen = scores.argmax(-1).data<long>().ToArray();
            }
            else
            {
                var warped = LogitsWarpers.Apply(scores, _options);
                chosen = _active.Select((row, i) => _samplers[row].Sample(warped.narrow(0, i, 1)).ToInt64()).ToArray();
            }
        }

        var still = new List<int>();
        var keep = new List<long>();
        var tokens = _tokens.data<long>();
        for (var i = 0; i < _active.Count; i++)
        {
            var row = _active[i];
            tokens[row, _length] = chosen[i];
            _nextPosition[row]++;
            NewTokens++;
            if (!_ends.Contains(chosen[i]))
            {
                still.Add(row);
                keep.Add(i);
            }
        }

        _length++;
        Steps++;
        var previous = _active;
        _active = still;
        if (Done)
        {
            return null;
        }

        var kept = keep.Count == previous.Count ? null : Track(tensor(keep.ToArray()));
        var rows = Track(tensor(_active.Select(r => (long)r).ToArray()));
        var ids = Track(tensor(still.Select((row, i) => chosen[keep[i]]).ToArray()).unsqueeze(1));
        var positions = Track(tensor(_active.Select(r => _nextPosition[r] - 1).ToArray()).unsqueeze(1));
        var mask = _mask is null ? null : Track(_mask.index_select(0, rows).narrow(1, 0, _length).contiguous());
        return new GenerationStep(Sequence, ids, positions, mask, 0, kept);
    }

    /// <summary>
    /// After the stages lost this group's caches (a stage was re-planned): a prefill of the active rows' prompts and
    /// tokens so far, under a new sequence id, whose logits are those of the step that was lost.
    /// </summary>
    public GenerationStep Resume()
    {
        ReleaseStepTensors();
        _resumes++;
        return Prefill();
    }

    /// <summary>The step that frees this group's caches on every stage.</summary>
    public GenerationStep Release() => GenerationStep.Free(Sequence);

    public void Dispose()
    {
        ReleaseStepTensors();
        _tokens.Dispose();
        _mask?.Dispose();
        foreach (var sampler in _samplers ?? [])
        {
            sampler.Dispose();
        }
    }

    private GenerationStep Prefill()
    {
        var rows = Track(tensor(_active.Select(r => (long)r).ToArray()));
        var ids = Track(_tokens.index_select(0, rows).narrow(1, 0, _length).contiguous());
        Tensor? mask = null;
        Tensor positions;
        if (_mask is null)
        {
            positions = Track(arange(_length, ScalarType.Int64).unsqueeze(0));
        }
        else
        {
            mask = Track(_mask.index_select(0, rows).narrow(1, 0, _length).contiguous());
            positions = Track(LeftPadding.Positions(mask));
        }

        return new GenerationStep(Sequence, ids, positions, mask, _promptLength + _options.MaxNewTokens);
    }

    private Tensor Track(Tensor tensor)
    {
        _stepTensors.Add(tensor.DetachFromDisposeScope());
        return tensor;
    }

    private void ReleaseStepTensors()
    {
        _stepTensors.ForEach(t => t.Dispose());
        _stepTensors.Clear();
    }
}
