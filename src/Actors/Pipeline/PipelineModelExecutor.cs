using DistributedInference.Models;
using DistributedInference.Models.Serving.Batching;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// The <see cref="IModelExecutor"/> of a decoder cut into pipeline stages: each pass is one paged
/// <see cref="GenerationStep"/> (the token ids, positions, and the <see cref="PagedKvPlan"/> computed here from the
/// block tables, as tensors) sent uncut through <see cref="IPipeline.StepAsync"/>; every stage keeps the keys and values
/// of its own layers in a paged store named by this executor's pool, which it allocates on the first step, and the last
/// stage returns the logits. The engine's thread blocks on the step (one step of one engine in flight at a time); several
/// executors over the same pipeline keep every stage busy, one engine's step at stage k while another's is at stage
/// k - 1 (<see cref="PipelineEngines"/>). A step that meets a lost stage (<see cref="StageStateLostException"/>, or a
/// stage that holds no store for the pool: it was planned again) throws <see cref="KvCacheLostException"/>, and the next
/// step allocates the stores afresh. Does not own the pipeline; disposing frees the pool's stores on the stages.
/// </summary>
public sealed class PipelineModelExecutor : IModelExecutor
{
    private static readonly TimeSpan ReleaseWait = TimeSpan.FromSeconds(10);

    private readonly IPipeline _pipeline;
    private readonly PipelineDecoder _decoder;
    private readonly string _pool;
    private int _blocks;
    private int _blockSize;
    private bool _fresh = true;

    /// <param name="pipeline">Stages built from a staged model whose layers can generate.</param>
    /// <param name="decoder">The decoder the stages hold.</param>
    /// <param name="pool">The name of this executor's stores on the stages, unique among the pipeline's users.</param>
    public PipelineModelExecutor(IPipeline pipeline, PipelineDecoder decoder, string pool)
    {
        _pipeline = pipeline;
        _decoder = decoder;
        _pool = pool;
    }

    public string Name => $"pipeline-{_pool}";

    public int VocabSize => _decoder.VocabSize;

    public long BytesPerPosition => _decoder.BytesPerPosition;

    public void CheckInput(IReadOnlyList<long> promptTokenIds, long maxNewTokens)
    {
        using var ids = tensor(promptTokenIds.ToArray()).unsqueeze(0);
        Models.Tokenization.TokenIds.Check(ids, _decoder.VocabSize, _decoder.MaxPositions, "max_position_embeddings", maxNewTokens);
    }

    /// <summary>Remembers the pool's size; the stages allocate their stores on the first step.</summary>
    public void InitializeCache(int blocks, int blockSize) => (_blocks, _blockSize) = (blocks, blockSize);

    /// <exception cref="KvCacheLostException">A stage was lost: the pool's stores are gone.</exception>
    /// <exception cref="Kernel.Requests.JobFailedException">A stage failed the step.</exception>
    public Tensor ExecuteModel(IReadOnlyList<ScheduledChunk> chunks)
    {
        if (_blocks == 0)
        {
            throw new InvalidOperationException("the KV cache is not initialised");
        }

        var length = chunks[0].Count;
        var (ids, positions) = ScheduledChunk.Inputs(chunks);
        var plan = PagedKvPlan.Of(chunks.Select(c => ((IReadOnlyList<int>)c.Sequence.Blocks, c.Start)).ToList(), length, _blockSize);
        var step = new GenerationStep(
            _pool,
            tensor(ids).view(chunks.Count, length),
            tensor(positions).view(chunks.Count, length),
            plan.MaskTensor(),
            0,
            Paged: new PagedStep(plan.PastSlotsTensor(), plan.NewSlotsTensor(), _blocks, _blockSize, _fresh));
        PipelineStepCompleted done;
        try
        {
            done = _pipeline.StepAsync(step.ToPayload()).GetAwaiter().GetResult();
        }
        catch (StageStateLostException e)
        {
            _fresh = true;
            throw new KvCacheLostException($"KV cache pool {_pool}: {e.Message}", e);
        }

        using var output = done.Output;
        if (!GenerationStep.TryRead(output.Value, out var result))
        {
            throw new Kernel.Requests.JobFailedException($"the last stage returned a {output.Value.GetType().Name}, not a generation step (do its layers generate?)");
        }

        if (result.Lost)
        {
            _fresh = true;
            throw new KvCacheLostException($"a stage holds no KV cache of pool {_pool}: it was lost with a stage, and the pipeline planned again");
        }

        _fresh = false;
        return result.Hidden.to(ScalarType.Float32).clone();
    }

    /// <summary>Frees the pool's stores on the stages (waits a little; a pipeline already gone frees them itself).</summary>
    public void Dispose()
    {
        if (_blocks == 0)
        {
            return;
        }

        try
        {
            using var scope = NewDisposeScope();
            var release = _pipeline.StepAsync(GenerationStep.Free(_pool).ToPayload());
            if (release.Wait(ReleaseWait))
            {
                release.Result.Output.Dispose();
            }
        }
        catch (Exception e) when (e is AggregateException or ObjectDisposedException or InvalidInputException or InvalidOperationException)
        {
            // The pipeline is stopping or gone: its stages' stores go with it.
        }
    }
}
